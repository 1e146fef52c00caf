"""hapair: one server to a two-node high-availability pair with a witness."""

__version__ = "0.1.0"
