"""`python -m confprofile` is the `confprofile` command."""

from confprofile.cli import main

main()
