"""Ledgers written by hand for the finance tests, with what they hold worked out in the comments."""

# Three cohorts (January to March 2026; the ledger ends in March). Lots: a's of 5 Jan (600, earned at
# Green), b's of 20 Jan (400, Gold), a's of 10 Feb (300, Gold: a has moved up), b's of 11 Feb (200,
# Gold, 50 clawed back), c's of 1 Mar (800, Green). a's January lot is partly redeemed in February
# at Gold: it stays in Green's triangle, the tier it was earned at.
HAND_LEDGER = """customer_id,timestamp,kind,points,earned_on,tier
a,2026-01-05 10:00:00,earn,600,2026-01-05,Green
b,2026-01-20 10:00:00,earn,400,2026-01-20,Gold
a,2026-01-25 10:00:00,redeem,200,2026-01-05,Green
a,2026-02-10 10:00:00,earn,300,2026-02-10,Gold
b,2026-02-11 10:00:00,earn,200,2026-02-11,Gold
a,2026-02-12 10:00:00,redeem,300,2026-01-05,Gold
a,2026-02-15 10:00:00,redeem,100,2026-02-10,Gold
b,2026-02-20 10:00:00,clawback,50,2026-02-11,Gold
a,2026-02-20 10:00:00,capped,40,,Gold
c,2026-03-01 10:00:00,earn,800,2026-03-01,Green
b,2026-03-02 10:00:00,redeem,100,2026-01-20,Gold
b,2026-03-03 10:00:00,redeem,150,2026-02-11,Gold
c,2026-03-04 10:00:00,redeem,200,2026-03-01,Green
b,2026-03-31 00:00:00,expire,50,2026-01-20,Gold
"""
