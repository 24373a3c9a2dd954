"""
C{samptwist remote}: the SAMP clients of another machine (a server, a
container, a cluster node) and those of this desktop see and message each
other, through one byte stream (normally an ssh session) between two
agents, one on each side, each an ordinary client of its own hub.

L{protocol} is the wire protocol (AMP), L{files} the translation and
streaming of file URLs, L{agent} the agent itself; L{link} starts the far
side and keeps the link up.
"""
