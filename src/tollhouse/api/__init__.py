"""HTTP layer: parse the wire, call the gateway, render. No business logic here."""
