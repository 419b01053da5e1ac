"""The micro-fulfillment connector."""
