"""``python -m coursekit.sandbox kernel CONNECTION_FILE | nbgrader BOX ASSIGNMENT STUDENT [FEEDBACK]``."""
import sys


def main(argv: list[str]) -> int:
    if argv and argv[0] == "kernel":
        from coursekit.sandbox.kernel import kernel_main

        kernel_main(argv[1:])
        return 0
    if argv and argv[0] == "nbgrader":
        from coursekit.sandbox.job import nbgrader_main

        return nbgrader_main(*argv[1:5])
    print("usage: python -m coursekit.sandbox kernel CONNECTION_FILE | nbgrader BOX ASSIGNMENT STUDENT",
          file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
