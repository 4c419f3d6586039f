"""`python -m swalab.cli`: the same as the `swalab` script."""

from swalab.cli import main

main()
