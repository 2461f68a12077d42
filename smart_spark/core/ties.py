"""The tie rule every greedy engine shares: gains this close, relative to their scale, are equal.

Ties go to the smallest row position, so every engine (numpy, torch) picks the same rows.
"""

TIE_RTOL = 1e-12
