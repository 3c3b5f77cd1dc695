"""One ComponentResource per capability of the AWS target."""
