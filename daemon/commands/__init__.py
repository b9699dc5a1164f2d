"""The ``edgebill`` commands, one module per noun, each with ``register(subparsers)``.

:mod:`daemon.commands.common` holds what they share: :class:`~daemon.commands.common.CliError`, the database
:func:`~daemon.commands.common.transaction`, argument types and the table, field and JSON printers.
:func:`daemon.cli.build_parser` registers the modules in the order ``edgebill --help`` lists them.

Adding a command: write ``cmd_x(args) -> int`` in the module of its noun and add it in that module's
``register`` with :func:`~daemon.commands.common.command` (``needs_settings=True`` puts the loaded settings in
``args.settings``; ``json_flag=True`` adds ``--json``). A new noun is a new module, added to
:data:`daemon.cli.COMMANDS`.
"""
