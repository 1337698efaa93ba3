"""A tiny stand-in for thivien.net, served on 127.0.0.1 for the crawler tests."""
