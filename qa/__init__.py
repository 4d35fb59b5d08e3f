"""The course's own quality checks, apart from the grading code: they read ``tests/catalogs`` and build the classes
the tests grade. Nothing in ``autograder/`` imports this package.

- ``kernel.py``: run cells one by one in a real Jupyter kernel (catalog runs, release checks, benchmarks)
- ``discrimination.py``: each graded item's catalog of wrong and right versions, judged as grading judges
- ``demo.py``: builds the bundled demo class (alice 5/5, bob 2/5, carol 0/5) that ``make course`` grades
- ``adversarial.py``: builds the adversarial class of hostile submissions (``qa/adversarial_class``)
- ``in_process.py``: the grader's checks run in-process (no kernel), and the seed sweep

``python -m qa discrimination [NN …]``, ``python -m qa seeds [NN …]`` and ``python -m qa classes`` run them.
"""
