import numpy as np, warnings; warnings.simplefilter("ignore")
from pytest_gradcheck import check_gradient
f=lambda p: float(np.sum(np.where(p>0, p**2+1.0, p**2)))   # a jump at 0 between two branches
for g in (lambda p: 2*p, lambda p: 2*p+5):
    for mode in ("full","fast","auto"):
        r=check_gradient(f, np.array([0.0, 0.7]), g, mode=mode); print(mode, r.status, [e.reason[:120] for e in r.worst if e.reason][:1], (r.diagnosis or {}).get('cause'))
