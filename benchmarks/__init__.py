"""
Benchmarks comparing samptwist's hub with pyvo.samp's (astropy's) and JSAMP's.

Run ``python3 -m benchmarks.run --help``; see ``benchmarks/README.md``.
"""
