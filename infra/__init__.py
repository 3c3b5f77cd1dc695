"""Tidewater's Pulumi program: typed stack config, one ComponentResource per capability, pure IAM documents."""
