// The coursekit course site, in the browser: search over every lecture and sliders over pre-rendered
// frames. Nothing here asks the network: the search index is window.COURSEKIT_SEARCH, loaded from
// search-index.js by a <script> tag (fetch() of a JSON file is refused on file:// pages).
(function () {
  "use strict";

  function ready(fn) {
    if (document.readyState !== "loading") { fn(); } else { document.addEventListener("DOMContentLoaded", fn); }
  }

  // <figure class="ck-frames" data-frames='["a.png", ...]' data-values='["0.00", ...]'>
  //   <img> ... <input type="range"> <output> </figure>
  function setupFrames() {
    document.querySelectorAll(".ck-frames").forEach(function (box) {
      var frames = JSON.parse(box.getAttribute("data-frames"));
      var values = JSON.parse(box.getAttribute("data-values"));
      var img = box.querySelector("img");
      var range = box.querySelector("input[type=range]");
      var readout = box.querySelector("output");
      function show() {
        var i = Number(range.value);
        img.src = frames[i];
        readout.textContent = values[i];
      }
      range.addEventListener("input", show);
      range.disabled = false;
    });
  }

  function terms(text) {
    return text.toLowerCase().split(/\s+/).filter(function (w) { return w.length > 0; });
  }

  function snippet(text, term) {
    var at = text.toLowerCase().indexOf(term);
    var start = Math.max(0, at - 60);
    return (start > 0 ? "… " : "") + text.slice(start, start + 180) + (start + 180 < text.length ? " …" : "");
  }

  // Every entry: {page, title, section, anchor, text}; a hit contains every term of the query.
  function search(query) {
    var wanted = terms(query);
    if (!wanted.length || query.trim().length < 2) { return []; }
    return (window.COURSEKIT_SEARCH || []).filter(function (entry) {
      var haystack = (entry.title + " " + entry.section + " " + entry.text).toLowerCase();
      return wanted.every(function (w) { return haystack.indexOf(w) >= 0; });
    });
  }

  function setupSearch() {
    var input = document.getElementById("ck-search");
    var list = document.getElementById("ck-search-results");
    if (!input || !list) { return; }
    input.addEventListener("input", function () {
      var hits = search(input.value);
      list.textContent = "";
      list.hidden = input.value.trim().length < 2;
      if (list.hidden) { return; }
      if (!hits.length) {
        var none = document.createElement("li");
        none.textContent = "No section mentions all of: " + input.value.trim();
        list.appendChild(none);
        return;
      }
      hits.slice(0, 25).forEach(function (entry) {
        var item = document.createElement("li");
        var link = document.createElement("a");
        link.href = entry.page + (entry.anchor ? "#" + entry.anchor : "");
        link.textContent = entry.section === entry.title ? entry.title : entry.title + " — " + entry.section;
        var text = document.createElement("div");
        text.className = "ck-snippet";
        text.textContent = snippet(entry.text, terms(input.value)[0]);
        item.appendChild(link);
        item.appendChild(text);
        list.appendChild(item);
      });
    });
    input.addEventListener("keydown", function (event) {
      if (event.key === "Escape") { input.value = ""; list.hidden = true; }
    });
  }

  // On a phone the contents start folded, so the lecture comes first.
  function foldContents() {
    var toc = document.querySelector(".ck-toc details");
    if (toc && window.matchMedia && window.matchMedia("(max-width: 52em)").matches) { toc.open = false; }
  }

  window.coursekitSearch = search;
  ready(function () { setupFrames(); setupSearch(); foldContents(); });
})();
