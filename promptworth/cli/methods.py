"""`promptworth methods`: the adaptation methods, or one method's parameters and defaults."""

from __future__ import annotations

import argparse


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--params", metavar="NAME", help="show one method's parameters and defaults")


def main(args: argparse.Namespace) -> int:
    return parameters(args.params) if args.params else listing()


def listing() -> int:
    from promptworth.methods import REGISTRY

    width = max(map(len, REGISTRY))
    for name, (_, summary) in REGISTRY.items():
        print(f"{name:<{width}}  {summary}")
    print("\nParameters: `promptworth methods --params NAME`, set with --param NAME.KEY=VALUE")
    return 0


def parameters(name: str) -> int:
    from dataclasses import fields

    from promptworth.methods import method_class

    cls = method_class(name)
    print(f"{cls.name}: {cls.summary}")
    defaults = cls.Config()  # fields with a default_factory have no plain `default`
    for f in fields(cls.Config):
        print(f"  {f.name} = {getattr(defaults, f.name)!r}")
    return 0
