import numpy as np
from pytest_gradcheck import check_gradient, check_vjp
def maxpool(x, k=2, s=1):
    H,W=x.shape; oh=(H-k)//s+1; ow=(W-k)//s+1
    out=np.empty((oh,ow))
    for i in range(oh):
        for j in range(ow):
            out[i,j]=x[i*s:i*s+k, j*s:j*s+k].max()
    return out
def maxpool_vjp(x, c, k=2, s=1, factor=1.0):
    H,W=x.shape; g=np.zeros_like(x); oh,ow=c.shape
    for i in range(oh):
        for j in range(ow):
            win=x[i*s:i*s+k, j*s:j*s+k]; a=np.argmax(win)  # first max, row-major
            g[i*s+a//k, j*s+a%k]+=factor*c[i,j]
    return g
x=np.full((4,4),0.7)
R=np.random.default_rng(1).choice([-1.0,1.0],size=(3,3))*np.random.default_rng(2).uniform(0.5,2,size=(3,3))
for fac in (1.0, 2.0, 30.0, -1.0):
    for mode in ("full","fast","auto"):
        r=check_gradient(lambda x: float(np.sum(maxpool(x)*R)), x, lambda x: maxpool_vjp(x,R,factor=fac), mode=mode)
        print('loss',fac,mode,r.status,round(r.max_ratio,3),(r.worst[0].reason[:160] if r.worst else ''))
    r=check_vjp(maxpool, x, lambda x,c: maxpool_vjp(x,c,factor=fac))
    print('vjp',fac,r.status,round(r.max_ratio,3),(r.worst[0].reason[:160] if r.worst else ''))
print(check_vjp(maxpool, x, lambda x,c: maxpool_vjp(x,c)))
