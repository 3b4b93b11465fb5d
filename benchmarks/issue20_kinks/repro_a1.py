import numpy as np
from pytest_gradcheck import check_gradient, check_jacobian
def f(p): return max(p[0]+p[1],0)+max(p[0]-p[1],0)
for g in ([60.,0.],[1.,0.],[0.,0.],[2.,0.],[3.,0.],[-1.,0.]):
    for mode in ("full","fast","auto"):
        r = check_gradient(f, np.zeros(2), lambda p,g=g: np.array(g), mode=mode)
        print(g, mode, r.status, round(r.max_ratio,3), [e.get('reason','')[:150] for e in r.to_dict().get('worst',[])][:1] if hasattr(r,'to_dict') else '')
# least squares Hessian bug
rng=np.random.default_rng(0); X=rng.normal(size=(30,3)); y=rng.normal(size=30)
w0=np.linalg.lstsq(X,y,rcond=None)[0]
def score(w): return X.T@(X@w-y)*2
def hess(w): H=2*X.T@X; H=H.copy(); H[0,0]*=2; return H
def hess_ok(w): return 2*X.T@X
for h in (hess,hess_ok):
  for mode in ("full","fast","auto"):
    try:
        r=check_jacobian(score, w0, h, mode=mode)
        print(h.__name__, mode, r.status, round(r.max_ratio,3))
    except Exception as e: print(h.__name__, mode, 'ERR', e)
