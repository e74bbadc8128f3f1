"""`loyalty`: the command line. Language commands come from rulelang.cli; simulation ones live here."""

from __future__ import annotations

import click

from rulelang import cli as language


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="loyalty-toolkit")
def main():
    """Design loyalty programs before they launch: check, explain, simulate, test."""


for _cmd in language.commands:
    main.add_command(_cmd)

if __name__ == "__main__":
    main()
