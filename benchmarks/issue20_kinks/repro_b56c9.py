import numpy as np, warnings
warnings.simplefilter("ignore")
from pytest_gradcheck import check_gradient
import scipy.special as sp
def show(tag, f, x, g):
    for mode in ("full","fast","auto"):
        try:
            r=check_gradient(f, x, g, mode=mode)
            print(tag, mode, r.status, f"{r.max_ratio:.3g}", (r.worst[0].reason[:150] if r.worst else ''), '|', (r.diagnosis or {}).get('cause'))
        except Exception as e: print(tag, mode, 'ERR', repr(e)[:200])
# B.5 staircase numpy
x=np.linspace(0.1,0.9,7)
st=lambda x: float(np.sum(np.round(x,3)**2))
show('round ae0', st, x, lambda x: np.zeros_like(x))
show('round ste', st, x, lambda x: 2*np.round(x,3))
show('round half', st, x, lambda x: np.round(x,3))
show('round flip', st, x, lambda x: -2*np.round(x,3))
# B.6 lambertw
x=np.array([-1/np.e+1e-8, 0.5])
lw=lambda x: float(np.sum(sp.lambertw(x).real))
def lwg(x, fac=1.0):
    w=sp.lambertw(x).real; return fac*w/(x*(1+w))
show('lambertw ok', lw, x, lwg)
show('lambertw 2x', lw, x, lambda x: lwg(x,2.0))
show('sqrt ok', lambda x: float(np.sum(np.sqrt(x))), np.array([1e-12, 0.5]), lambda x: 0.5/np.sqrt(x))
show('sqrt 2x', lambda x: float(np.sum(np.sqrt(x))), np.array([1e-12, 0.5]), lambda x: 1.0/np.sqrt(x))
show('log ok', lambda x: float(np.sum(np.log(x))), np.array([1e-10, 0.5]), lambda x: 1/x)
show('log 2x', lambda x: float(np.sum(np.log(x))), np.array([1e-10, 0.5]), lambda x: 2/x)
# C.9
show('i1e0', lambda x: float(np.sum(sp.i1e(x))), np.array([0.0, 1.0]), lambda x: sp.i1e(x)*(0) + (sp.i0e(x) - sp.i1e(x)*(np.sign(x) + np.where(x==0,0,1/np.where(x==0,1,x)))))
