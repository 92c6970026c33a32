"""One module per subcommand; ``specviz.cli`` parses the arguments and dispatches here."""
