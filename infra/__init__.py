"""The Pulumi program (Pulumi.yaml main: infra/): __main__.py composes one ComponentResource per capability."""
