"""The simulator: replay history through a program and forecast what finance must sign off."""
