"""
Declares the C{samphub} twistd plugin; everything else is in L{samptwist.tap}.
"""

from twisted.application.service import ServiceMaker

samphub = ServiceMaker(
    "SAMP hub",
    "samptwist.tap",
    "A SAMP 1.3 hub (Standard and Web Profile).",
    "samphub",
)
