import numpy as np
from scipy.optimize import least_squares
from pytest_gradcheck import check_jacobian
rng=np.random.default_rng(3); X=rng.normal(size=(40,3)); wt=np.array([0.5,-0.3,0.2]); y=np.exp(X@wt)+0.1*rng.normal(size=40)
w0=least_squares(lambda w: np.exp(X@w)-y, np.zeros(3), xtol=1e-15, ftol=1e-15, gtol=1e-15).x
def score(w):
    m=np.exp(X@w); r=m-y; return 2*X.T@(r*m)
def hess_ok(w):
    m=np.exp(X@w); r=m-y; return 2*(X.T*(m*m+r*m))@X
def hess_bug(w):
    H=hess_ok(w); H[1,2]*=2; return H
def hess_bug_sym(w):
    H=hess_ok(w); H[1,1]*=2; return H
for h in (hess_ok,hess_bug,hess_bug_sym):
  for mode in ("full","fast","auto"):
    r=check_jacobian(score, w0, h, mode=mode)
    d=r.to_dict(); ws=d.get('worst') or []
    print(h.__name__, mode, r.status, round(r.max_ratio,3), (ws[0].get('reason') or '')[:200] if ws else '')
