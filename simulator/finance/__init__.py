"""The finance view of a program: breakage from cohort triangles, deferred revenue and provisions.

`triangles`: cohorts of points by the month they were earned, their development, and the ultimate
redemption rate (URR) by chain ladder with Mack's standard errors. `accounting`: IFRS 15 / ASC 606
deferred revenue for points and the cost-method provision, as monthly roll-forwards in minor units.
Both take plain frames and arrays, so any caller (the simulator, a notebook) can use them.
"""
