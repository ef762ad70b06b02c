"""Labs: live, measured demonstrations of the lectures' lessons.

Each lab computes its numbers on the spot, prints verdict lines and writes a
report (:mod:`harness.lab.report`) with its plots.
"""
