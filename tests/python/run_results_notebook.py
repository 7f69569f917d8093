"""Runs the code cells of examples/results.ipynb on one run folder and prints its headline
table as CSV, for tests/results.rs to compare with `shiftlab query "SELECT * FROM robustness"`.

Usage: run_results_notebook.py NOTEBOOK RUN_DIR
"""
import json
import sys


def main() -> None:
    notebook, run = sys.argv[1], sys.argv[2]
    cells = json.load(open(notebook))["cells"]
    scope = {"RUN": run, "__name__": "__notebook__"}
    for cell in cells:
        if cell["cell_type"] == "code":
            exec(compile("".join(cell["source"]), notebook, "exec"), scope)
    sys.stdout.write(scope["table"].to_csv(index=False))


if __name__ == "__main__":
    main()
