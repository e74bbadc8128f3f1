"""The simulator: replay history through a program and forecast what finance must sign off."""

__all__ = ["simulate"]


def simulate(program, transactions, customers=None, scenario=None, **options):
    """Replay `transactions` through `program` under `scenario`; returns a `SimulationResult`."""
    from simulator.api import simulate as _simulate

    return _simulate(program, transactions, customers, scenario, **options)
