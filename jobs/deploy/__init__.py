"""`tide deploy`: register a trained model and add it to an endpoint as a challenger variant."""
