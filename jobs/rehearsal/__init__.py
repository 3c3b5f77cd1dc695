"""`tide local`: the platform's lifecycle rehearsed on the embedded cloud."""
