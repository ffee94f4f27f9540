"""``python -m xsm.archive.cli``: the ``xsm`` command without its console script."""
from xsm.archive.cli import main

main()
