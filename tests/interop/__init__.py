"""Interoperability tests of our hub against real SAMP peers (JSAMP, pyvo.samp, astropy.samp)."""
