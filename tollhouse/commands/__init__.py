"""One module per ``tollhouse`` subcommand, each with ``add_parser(subparsers, name, common)``
and ``main(args)``."""
