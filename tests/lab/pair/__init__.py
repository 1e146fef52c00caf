"""One lab, one upgrade, five modules (conftest.py says why they run in this order)."""
