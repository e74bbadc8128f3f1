"""Purchase models fitted to a history, for forecasting beyond it.

`summary` turns a loaded transactions frame into each customer's (x, t_x, T, mean spend);
`bgnbd` is the BG/NBD model of how many purchases a customer makes and when they leave (Fader,
Hardie & Lee 2005); `gamma_gamma` is the Gamma-Gamma model of the spend per purchase (Fader,
Hardie & Lee 2005b); `fitting` is the `loyalty fit` command and the model file it writes.
"""
