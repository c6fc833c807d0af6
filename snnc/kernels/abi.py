"""The version of the calling convention between generated kernels and snnc.runtime.fused.

A generated module embeds its kernels' source; one built by an older snnc must not be
called with a newer runtime's arguments. Bump this whenever a kernel's C signature or the
meaning of an argument changes (templates/kernels/*.j2 print it into every source)."""
KERNEL_ABI = 5  # 4: which inputs reach the outputs (snnc_spike_sources, snnc_any_sources)
# 5: the CPU backward gives the initial states' gradient (grad_state0)
# The compiled clock loop's (snnc/kernels/loop.py, templates/kernels/loop.c.j2): bump it
# whenever snnc_loop's signature or the meaning of a layout entry changes; a loop of
# another version is refused by snnc.runtime.compiled.
LOOP_ABI = 3  # 3: snnc_loop_prepare/release; delays in their own type; spike events
# The words of templates/kernels/mt19937.h.j2's mt19937_t: 624 of state, left, next.
MT19937_WORDS = 626
# softbp's compiled step-by-step run and its reverse (snnc/kernels/bptt.py,
# templates/kernels/bptt.c.j2): bump it as LOOP_ABI.
BPTT_ABI = 1
