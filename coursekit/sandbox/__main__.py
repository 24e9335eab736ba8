"""``python -m coursekit.sandbox kernel CONFIG CONNECTION_FILE``: the sandboxed kernel's launcher."""
import sys


def main(argv: list[str]) -> int:
    if argv and argv[0] == "kernel":
        from coursekit.sandbox.kernel import kernel_main

        kernel_main(argv[1:])
        return 0
    print("usage: python -m coursekit.sandbox kernel CONFIG CONNECTION_FILE", file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
