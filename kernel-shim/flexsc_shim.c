// SPDX-License-Identifier: GPL-2.0
/*
 * flexsc_shim - exception-less system calls (FlexSC) for Linux.
 *
 * Threads of a process enter the kernel once (FLEXSC_IOC_SERVE) and stay,
 * draining the process's syscall pages.  A server takes a whole region
 * with one compare-and-swap on its drainer word, then claims each
 * SUBMITTED entry there with a plain store of BUSY (no other server
 * drains the region meanwhile), runs it through the kernel's syscall
 * dispatcher with the entry's six arguments, and publishes it DONE; it
 * lets the region go when it sleeps or is preempted in a call, yields, or
 * leaves SERVE, so another server drains what follows.  Serving threads
 * are the process's own threads, so every call sees the process's memory,
 * descriptors and shared filesystem state; what one thread made its own
 * (credentials set by a raw setfsuid, a cwd after unshare) is not the
 * server's (docs/limits.md).  The interface is abi/flexsc/shim.h.
 */
#define pr_fmt(fmt) KBUILD_MODNAME ": " fmt

#include <linux/atomic.h>
#include <linux/close_range.h>
#include <linux/cpumask.h>
#include <linux/delay.h>
#include <linux/freezer.h>
#include <linux/fs.h>
#include <linux/hugetlb_inline.h>
#include <linux/futex.h>
#include <linux/ioprio.h>
#include <linux/irq_work.h>
#include <linux/kprobes.h>
#include <linux/kref.h>
#include <linux/miscdevice.h>
#include <linux/mm.h>
#include <linux/mman.h>
#include <linux/module.h>
#include <linux/mutex.h>
#include <linux/nospec.h>
#include <linux/percpu.h>
#include <linux/posix-timers.h>
#include <linux/preempt.h>
#include <linux/rcupdate.h>
#include <linux/resource.h>
#include <linux/sched.h>
#include <linux/sched/clock.h>
#include <linux/sched/mm.h>
#include <linux/sched/signal.h>
#include <linux/sched/stat.h>
#include <linux/seccomp.h>
#include <linux/shmem_fs.h>
#include <linux/slab.h>
#include <linux/static_call.h>
#include <linux/task_work.h>
#include <linux/uaccess.h>
#include <linux/vmalloc.h>
#include <linux/wait.h>
#include <asm/syscall.h>

#include <flexsc/entry.h>
#include <flexsc/shim.h>

#include "flexsc_decide.h"

/*
 * Kernel-internal restart codes (include/linux/errno.h): ERESTARTSYS,
 * ERESTARTNOINTR, ERESTARTNOHAND and ERESTART_RESTARTBLOCK (515 is
 * ENOIOCTLCMD, never returned to userspace either, but no restart).
 */
#define FLEXSC_ERESTART_BLOCK 516

static bool flexsc_restart_code(long ret)
{
	return ret == -512 || ret == -513 || ret == -514 || ret == -FLEXSC_ERESTART_BLOCK;
}

/* Longest idle spin a server may ask for. */
#define FLEXSC_MAX_SPIN_NS (10 * NSEC_PER_MSEC)

/* ---- the syscall dispatcher ------------------------------------------- */

typedef long (*flexsc_dispatch_fn)(const struct pt_regs *regs, unsigned int nr);
typedef long (*flexsc_table_fn)(const struct pt_regs *regs);

static flexsc_dispatch_fn flexsc_x64_sys_call;    /* 6.1 LTS backport and later */
static const flexsc_table_fn *flexsc_sys_call_table; /* older kernels */

/*
 * kallsyms_lookup_name is not exported since 5.7, but a kprobe on it tells
 * where it is.
 */
static unsigned long flexsc_lookup(const char *name)
{
	typedef unsigned long (*lookup_fn)(const char *name);
	struct kprobe kp = { .symbol_name = "kallsyms_lookup_name" };
	lookup_fn lookup;

	if (register_kprobe(&kp) < 0)
		return 0;
	lookup = (lookup_fn)kp.addr;
	unregister_kprobe(&kp);
	return lookup ? lookup(name) : 0;
}

static long flexsc_table_dispatch(const struct pt_regs *regs, unsigned int nr)
{
	return flexsc_sys_call_table[array_index_nospec(nr, NR_syscalls)](regs);
}

/*
 * Servers call the dispatcher through a static call: a direct call, with no
 * retpoline in the way of every entry.
 */
DEFINE_STATIC_CALL(flexsc_sys_call, flexsc_table_dispatch);

static int flexsc_resolve_dispatcher(void)
{
	flexsc_x64_sys_call = (flexsc_dispatch_fn)flexsc_lookup("x64_sys_call");
	if (flexsc_x64_sys_call) {
		static_call_update(flexsc_sys_call, flexsc_x64_sys_call);
		return 0;
	}
	flexsc_sys_call_table = (const flexsc_table_fn *)flexsc_lookup("sys_call_table");
	if (flexsc_sys_call_table)
		return 0;
	pr_err("cannot find the syscall dispatcher (neither x64_sys_call nor sys_call_table resolves): not loading\n");
	return -ENOENT;
}

static void __init flexsc_build_call_maps(void)
{
	/* The shared rules spell the ABI's constants out: they must be these. */
	BUILD_BUG_ON(FLEXSC_PRIO_PROCESS != PRIO_PROCESS || FLEXSC_RUSAGE_THREAD != RUSAGE_THREAD);
	BUILD_BUG_ON(FLEXSC_IOPRIO_WHO_PROCESS != IOPRIO_WHO_PROCESS);
	BUILD_BUG_ON(FLEXSC_CLOCK_THREAD_CPUTIME_ID != CLOCK_THREAD_CPUTIME_ID);
	BUILD_BUG_ON(FLEXSC_CPUCLOCK_PERTHREAD_MASK != CPUCLOCK_PERTHREAD_MASK);
	BUILD_BUG_ON(FLEXSC_CLOSE_RANGE_UNSHARE != CLOSE_RANGE_UNSHARE || FLEXSC_WNOTHREAD != __WNOTHREAD);
	BUILD_BUG_ON(FLEXSC_FUTEX_CMD_MASK != FUTEX_CMD_MASK || FLEXSC_FUTEX_LOCK_PI != FUTEX_LOCK_PI ||
		     FLEXSC_FUTEX_UNLOCK_PI != FUTEX_UNLOCK_PI || FLEXSC_FUTEX_TRYLOCK_PI != FUTEX_TRYLOCK_PI ||
		     FLEXSC_FUTEX_WAIT_REQUEUE_PI != FUTEX_WAIT_REQUEUE_PI ||
		     FLEXSC_FUTEX_CMP_REQUEUE_PI != FUTEX_CMP_REQUEUE_PI || FLEXSC_FUTEX_LOCK_PI2 != FUTEX_LOCK_PI2);
	BUILD_BUG_ON(FLEXSC_PROT_EXEC != PROT_EXEC || FLEXSC_PROT_GROWS != (PROT_GROWSDOWN | PROT_GROWSUP));
	/* Every call a server runs has a counter. */
	BUILD_BUG_ON(NR_syscalls > FLEXSC_SHIM_COUNTED_CALLS);

	flexsc_build_call_kinds();
}

/* ---- per-process state ------------------------------------------------ */

struct flexsc_region {
	struct kref ref;
	u32 id;
	unsigned long uaddr;
	unsigned int npages;
	unsigned int nentries;
	unsigned int cursor;          /* where the next pass starts: after the last claim */
	/*
	 * 1 while a server drains the region: that server alone claims its
	 * SUBMITTED entries, with plain stores.  Taken with one compare-and-swap
	 * per scan rather than one per entry, which would wait for the entry's
	 * line to be owned before every call.
	 */
	atomic_t drainer;
	struct page **pages;
	struct flexsc_entry *entries; /* vmap of the pinned pages */
	struct mm_struct *mm;         /* charged for the pinned pages (locked_vm) */
	wait_queue_head_t waiters;   /* FLEXSC_IOC_WAIT */
	atomic_t notified;           /* a NOTIFY no WAIT has returned for yet */
};

/*
 * What servers ran, per CPU: a server counts with one unlocked add, where
 * a shared counter would cost an atomic per entry (FLEXSC_IOC_STATS sums).
 */
struct flexsc_counts {
	u64 calls[FLEXSC_SHIM_COUNTED_CALLS];
	u64 nops;
	u64 cancelled;
	u64 overlapped;
};

struct flexsc_proc {
	struct list_head node; /* in flexsc_procs */
	struct mm_struct *mm;  /* mmgrab()ed: its address is never reused while we hold it */
	struct pid *tgid; /* its thread group (referenced): a vfork child shares the mm, not this */
	atomic_t blocked; /* servers asleep inside a call */
	atomic64_t claimed; /* entries claimed, against control->posted */
	atomic_t spinner; /* an idle server spins: the others sleep at once */
	spinlock_t serving_lock;
	struct list_head serving; /* threads inside SERVE (struct flexsc_serving) */
	struct list_head held;    /* entries threads left pending (struct flexsc_held) */
	struct page *control_pages[FLEXSC_SHIM_CONTROL_PAGES];
	struct flexsc_shim_control *control;
	struct flexsc_counts __percpu *counts;
	wait_queue_head_t servers; /* sleeping serving threads */
	atomic_long_t wakes;       /* bumped before each wake-up of one of them */
	atomic_long_t handoffs;    /* bumped when a server lets go of regions (flexsc_let_go()) */
	bool leaving;
	struct mutex regions_lock; /* REGISTER / UNREGISTER */
	unsigned int nslots;       /* slots in use: regions[0 .. nslots) */
	struct flexsc_region __rcu *regions[FLEXSC_SHIM_MAX_REGIONS];
};

static LIST_HEAD(flexsc_procs);
static DEFINE_MUTEX(flexsc_procs_lock);

static void flexsc_region_free(struct kref *ref)
{
	struct flexsc_region *r = container_of(ref, struct flexsc_region, ref);

	vunmap(r->entries);
	unpin_user_pages_dirty_lock(r->pages, r->npages, true);
	account_locked_vm(r->mm, r->npages, false);
	mmdrop(r->mm);
	kvfree(r->pages);
	kfree(r);
}

/*
 * Pins and maps npages of the caller's memory at uaddr: anonymous, shmem
 * or hugetlb memory only.  The module writes the pages through its own
 * mapping, which a file system's page cache does not expect (writeback
 * would find dirty pages it never saw dirtied), so other file-backed
 * memory is refused, as io_uring refuses it for its buffers.
 */
static int flexsc_pin(unsigned long uaddr, unsigned int npages, struct page **pages, void **mapped)
{
	struct vm_area_struct **vmas;
	unsigned int i;
	long pinned;
	int ret = 0;

	vmas = kvmalloc_array(npages, sizeof(*vmas), GFP_KERNEL);
	if (!vmas)
		return -ENOMEM;
	mmap_read_lock(current->mm);
	pinned = pin_user_pages(uaddr, npages, FOLL_WRITE | FOLL_LONGTERM, pages, vmas);
	for (i = 0; i < pinned && !ret; i++)
		if (vmas[i]->vm_file && !shmem_file(vmas[i]->vm_file) && !is_vm_hugetlb_page(vmas[i]))
			ret = -EOPNOTSUPP;
	mmap_read_unlock(current->mm);
	kvfree(vmas);
	if (pinned < 0)
		return pinned;
	if (pinned != npages || ret) {
		unpin_user_pages(pages, pinned);
		return ret ?: -EFAULT;
	}
	*mapped = vmap(pages, npages, VM_MAP, PAGE_KERNEL);
	if (!*mapped) {
		unpin_user_pages(pages, npages);
		return -ENOMEM;
	}
	return 0;
}

static struct flexsc_proc *flexsc_proc_of(struct file *file)
{
	struct flexsc_proc *p = READ_ONCE(file->private_data);

	/*
	 * A descriptor inherited by a child or passed to another process, or
	 * used by a child sharing the memory (vfork, CLONE_VM without
	 * CLONE_THREAD): its descriptors and credentials are its own.
	 */
	if (p && (p->mm != current->mm || p->tgid != task_tgid(current)))
		return ERR_PTR(-EPERM);
	return p ? p : ERR_PTR(-ENXIO);
}

static bool flexsc_seccomp_active(void)
{
#ifdef CONFIG_SECCOMP
	return READ_ONCE(current->seccomp.mode) != SECCOMP_MODE_DISABLED;
#else
	return false;
#endif
}

static long flexsc_attach(struct file *file, struct flexsc_shim_attach __user *uarg)
{
	struct flexsc_shim_attach a;
	struct flexsc_proc *p, *q;
	void *mapped;
	int ret;

	if (copy_from_user(&a, uarg, sizeof(a)))
		return -EFAULT;
	if (a.abi != FLEXSC_SHIM_ABI || a.flags || !PAGE_ALIGNED(a.control) || !a.control)
		return -EINVAL;
	/* Its syscalls would bypass the filter. */
	if (flexsc_seccomp_active())
		return -EPERM;
	p = kvzalloc(sizeof(*p), GFP_KERNEL);
	if (!p)
		return -ENOMEM;
	p->counts = alloc_percpu_gfp(struct flexsc_counts, GFP_KERNEL_ACCOUNT);
	if (!p->counts) {
		kvfree(p);
		return -ENOMEM;
	}
	ret = flexsc_pin(a.control, FLEXSC_SHIM_CONTROL_PAGES, p->control_pages, &mapped);
	if (ret) {
		free_percpu(p->counts);
		kvfree(p);
		return ret;
	}
	p->control = mapped;
	p->mm = current->mm;
	p->tgid = get_pid(task_tgid(current));
	mmgrab(p->mm);
	spin_lock_init(&p->serving_lock);
	INIT_LIST_HEAD(&p->serving);
	INIT_LIST_HEAD(&p->held);
	init_waitqueue_head(&p->servers);
	mutex_init(&p->regions_lock);

	mutex_lock(&flexsc_procs_lock);
	ret = 0;
	list_for_each_entry(q, &flexsc_procs, node)
		if (q->mm == current->mm)
			ret = -EBUSY; /* one attachment per process */
	if (!ret && cmpxchg(&file->private_data, NULL, p))
		ret = -EBUSY;
	if (!ret)
		list_add(&p->node, &flexsc_procs);
	mutex_unlock(&flexsc_procs_lock);
	if (ret) {
		vunmap(p->control);
		unpin_user_pages(p->control_pages, FLEXSC_SHIM_CONTROL_PAGES);
		mmdrop(p->mm);
		put_pid(p->tgid);
		free_percpu(p->counts);
		kvfree(p);
	}
	return ret;
}

/* Takes region slot out of the list (regions_lock held). */
static struct flexsc_region *flexsc_unlink_region(struct flexsc_proc *p, u32 slot)
{
	struct flexsc_region *r = rcu_dereference_protected(p->regions[slot], lockdep_is_held(&p->regions_lock));

	RCU_INIT_POINTER(p->regions[slot], NULL);
	return r;
}

/*
 * Drops the list's reference to an unlinked region, after a grace period:
 * a server that found it before keeps it alive with its own reference.
 */
static void flexsc_drop_region(struct flexsc_region *r)
{
	wake_up_all(&r->waiters);
	kref_put(&r->ref, flexsc_region_free);
}

/* Whether r's addresses overlap a listed region's (regions_lock held). */
static bool flexsc_overlaps(struct flexsc_proc *p, const struct flexsc_region *r)
{
	unsigned long end = r->uaddr + r->npages * PAGE_SIZE;
	unsigned int slot;

	for (slot = 0; slot < p->nslots; slot++) {
		const struct flexsc_region *o =
			rcu_dereference_protected(p->regions[slot], lockdep_is_held(&p->regions_lock));

		if (o && r->uaddr < o->uaddr + o->npages * PAGE_SIZE && o->uaddr < end)
			return true;
	}
	return false;
}

static long flexsc_register(struct flexsc_proc *p, struct flexsc_shim_region __user *uarg)
{
	struct flexsc_shim_region a;
	struct flexsc_region *r;
	void *mapped;
	unsigned int slot;
	int ret;

	if (copy_from_user(&a, uarg, sizeof(a)))
		return -EFAULT;
	if (!a.addr || !PAGE_ALIGNED(a.addr) || !a.pages || a.pages > FLEXSC_SHIM_MAX_PAGES)
		return -EINVAL;
	r = kzalloc(sizeof(*r), GFP_KERNEL);
	if (!r)
		return -ENOMEM;
	ret = -ENOMEM;
	r->pages = kvcalloc(a.pages, sizeof(*r->pages), GFP_KERNEL);
	if (!r->pages)
		goto free_region;
	/* Pinned pages count against RLIMIT_MEMLOCK, as io_uring's do. */
	ret = account_locked_vm(current->mm, a.pages, true);
	if (ret)
		goto free_pages;
	ret = flexsc_pin(a.addr, a.pages, r->pages, &mapped);
	if (ret)
		goto unaccount;
	r->mm = current->mm;
	mmgrab(r->mm);
	kref_init(&r->ref);
	r->entries = mapped;
	r->uaddr = a.addr;
	r->npages = a.pages;
	r->nentries = a.pages * FLEXSC_ENTRIES_PER_PAGE;
	init_waitqueue_head(&r->waiters);

	mutex_lock(&p->regions_lock);
	/* Each region has its own drainer: two over one entry could both claim it. */
	if (flexsc_overlaps(p, r)) {
		mutex_unlock(&p->regions_lock);
		kref_put(&r->ref, flexsc_region_free);
		return -EBUSY;
	}
	for (slot = 0; slot < FLEXSC_SHIM_MAX_REGIONS; slot++)
		if (!rcu_access_pointer(p->regions[slot]))
			break;
	if (slot == FLEXSC_SHIM_MAX_REGIONS) {
		mutex_unlock(&p->regions_lock);
		kref_put(&r->ref, flexsc_region_free);
		return -ENOSPC;
	}
	r->id = slot;
	kref_get(&r->ref); /* ours, for the copy below: the list's may go meanwhile */
	rcu_assign_pointer(p->regions[slot], r);
	if (slot >= p->nslots)
		WRITE_ONCE(p->nslots, slot + 1);
	mutex_unlock(&p->regions_lock);

	a.id = slot;
	ret = copy_to_user(uarg, &a, sizeof(a)) ? -EFAULT : 0;
	if (ret) {
		/* The caller cannot learn the id: take the region back, if still listed. */
		bool listed;

		mutex_lock(&p->regions_lock);
		listed = rcu_access_pointer(p->regions[slot]) == r;
		if (listed)
			flexsc_unlink_region(p, slot);
		mutex_unlock(&p->regions_lock);
		if (listed) {
			synchronize_rcu();
			flexsc_drop_region(r);
		}
	}
	kref_put(&r->ref, flexsc_region_free);
	/* Entries submitted before the registration are there already. */
	wake_up_all(&p->servers);
	return ret;

unaccount:
	account_locked_vm(current->mm, a.pages, false);
free_pages:
	kvfree(r->pages);
free_region:
	kfree(r);
	return ret;
}

static long flexsc_unregister(struct flexsc_proc *p, struct flexsc_shim_region __user *uarg)
{
	struct flexsc_shim_region a;
	struct flexsc_region *r;

	if (copy_from_user(&a, uarg, sizeof(a)))
		return -EFAULT;
	if (a.id >= FLEXSC_SHIM_MAX_REGIONS)
		return -EINVAL;
	mutex_lock(&p->regions_lock);
	r = flexsc_unlink_region(p, array_index_nospec(a.id, FLEXSC_SHIM_MAX_REGIONS));
	mutex_unlock(&p->regions_lock);
	if (!r)
		return -ENOENT;
	/*
	 * No server finds it now; one may still drain it, for the rest of a
	 * visit.  Taken for good, it claims nothing once we return.
	 */
	synchronize_rcu();
	while (atomic_cmpxchg_acquire(&r->drainer, 0, 1)) {
		if (fatal_signal_pending(current))
			break; /* the process dies: nobody is left to see a claim */
		schedule_timeout_killable(1);
	}
	flexsc_drop_region(r);
	return 0;
}

/* A reference to region slot, or NULL. */
static struct flexsc_region *flexsc_get_region(struct flexsc_proc *p, u32 slot)
{
	struct flexsc_region *r;

	if (slot >= FLEXSC_SHIM_MAX_REGIONS)
		return NULL;
	/* Indexes from userspace are clamped under speculation too. */
	slot = array_index_nospec(slot, FLEXSC_SHIM_MAX_REGIONS);
	rcu_read_lock();
	r = rcu_dereference(p->regions[slot]);
	if (r && !kref_get_unless_zero(&r->ref))
		r = NULL;
	rcu_read_unlock();
	return r;
}

/* ---- serving ----------------------------------------------------------- */

/* Wakes the region's waiters, after entries were made DONE. */
static void flexsc_wake_waiters(struct flexsc_region *r)
{
	/* wq_has_sleeper() orders the DONE stores before its check. */
	if (wq_has_sleeper(&r->waiters))
		wake_up_all(&r->waiters);
}

/* Tells spinning waiters that n more entries are DONE (shim.h). */
static void flexsc_announce(struct flexsc_shim_control *control, unsigned int n)
{
	atomic64_add(n, (atomic64_t *)&control->completed);
}

static void flexsc_publish(struct flexsc_proc *p, struct flexsc_region *r, struct flexsc_entry *e)
{
	smp_store_release(&e->status, FLEXSC_DONE);
	flexsc_announce(p->control, 1);
	flexsc_wake_waiters(r);
}

/*
 * Entries a SERVE call could not publish stay BUSY, held for the same
 * thread's next SERVE call: task work their call queued must run first (on
 * the way to userspace), or their call was interrupted and is made again,
 * as restart_syscall with the restart block it left (saved here: the
 * thread's own syscalls in between may overwrite it).  Userspace sees
 * their addresses in `pending`; the module trusts only its own record.
 */
#define FLEXSC_PENDING_RERUN 1ul       /* make the call again */
#define FLEXSC_PENDING_RESTARTBLOCK 2ul /* ... as restart_syscall */

struct flexsc_held_entry {
	struct flexsc_region *region; /* referenced */
	unsigned int index;
	unsigned long rerun; /* FLEXSC_PENDING_* */
	struct restart_block restart;
};

struct flexsc_held {
	struct list_head node;    /* in flexsc_proc.held, between SERVE calls */
	struct task_struct *task; /* referenced there */
	unsigned int n;
	struct flexsc_held_entry e[FLEXSC_SHIM_MAX_PENDING];
};

static u64 flexsc_posted(struct flexsc_proc *p)
{
	return smp_load_acquire(&p->control->posted);
}

struct flexsc_server {
	struct pt_regs regs; /* the registers calls see: zero but for the arguments */
	struct preempt_notifier notifier; /* tells when the server sleeps in a call */
	struct irq_work wake_spare;        /* ... and then wakes what waits (flexsc_wake_spare) */
	bool in_call;                      /* inside the dispatcher */
	bool blocked;                      /* asleep there: not ready */
	bool spare_due;                    /* it was the last ready: wake a sleeping server */
	/*
	 * The region whose waiters have entries DONE that they were not woken
	 * for yet, while a pass scans it; and the same, for the irq_work, once
	 * a call sleeps.  The pass holds the region until the irq_work is done.
	 */
	struct flexsc_region *unwoken;
	struct flexsc_region *waking;
	/*
	 * The region this server drains, and whether the preempt notifier let
	 * go of it (the server left its CPU in a call): then it claims no more
	 * there.
	 */
	struct flexsc_region *draining;
	bool drain_lost;
	struct flexsc_proc *p;
	struct flexsc_shim_serve *s;
	struct flexsc_held *held; /* what this call could not publish yet */
	u64 unflushed;            /* claims not yet added to p->claimed */
	u64 executed;
	u64 seen_posted;
	long seen_handoffs;
	unsigned int next_slot; /* where the next pass starts: regions take turns */
	int slot;               /* in control->servers, or -1 */
};

/* Loads an entry's arguments into the registers its call sees. */
static __always_inline void flexsc_load_args(struct pt_regs *regs, const struct flexsc_entry *e, unsigned int nr)
{
	/* Userspace can rewrite a BUSY entry: every field is read once. */
	regs->di = READ_ONCE(e->args[0]);
	regs->si = READ_ONCE(e->args[1]);
	regs->dx = READ_ONCE(e->args[2]);
	regs->r10 = READ_ONCE(e->args[3]);
	regs->r8 = READ_ONCE(e->args[4]);
	regs->r9 = READ_ONCE(e->args[5]);
	regs->orig_ax = nr;
	regs->ax = -ENOSYS;
}

/* Makes the call, nr already checked, its arguments loaded. */
static __always_inline long flexsc_dispatch(struct flexsc_server *sv, unsigned int nr)
{
	long ret;

	/* The preempt notifier hands over if the call sleeps. */
	WRITE_ONCE(sv->in_call, true);
	ret = static_call(flexsc_sys_call)(&sv->regs, nr);
	WRITE_ONCE(sv->in_call, false);
	return ret;
}

static u32 flexsc_must_return(struct flexsc_server *sv);

/*
 * Settles what a call returned.  Returns 0 when its result is final, or
 * the FLEXSC_PENDING_* bits to make the call again: a restart code while a
 * stop or a freeze is pending (every other signal is blocked on a server).
 * A dying process gets EINTR.  A call cut short that way sends the server
 * back (sv->s->reason) before it claims another entry.
 */
static unsigned long flexsc_settle(struct flexsc_server *sv, struct flexsc_entry *e, long ret)
{
	if (likely(!flexsc_restart_code(ret) && ret != -EINTR)) {
		e->ret = ret;
		return 0;
	}
	sv->s->reason = flexsc_must_return(sv);
	/* Shutdown interrupts a blocked call with the stop signal: cancelled. */
	if (READ_ONCE(sv->p->leaving)) {
		this_cpu_inc(sv->p->counts->cancelled);
		e->ret = -ECANCELED;
		return 0;
	}
	if (flexsc_restart_code(ret)) {
		if (fatal_signal_pending(current)) {
			e->ret = -EINTR;
			return 0;
		}
		/* restart_syscall finishes what such a call started (a sleep's rest). */
		return ret == -FLEXSC_ERESTART_BLOCK ? FLEXSC_PENDING_RERUN | FLEXSC_PENDING_RESTARTBLOCK
						     : FLEXSC_PENDING_RERUN;
	}
	e->ret = ret;
	return 0;
}

/*
 * Runs one claimed entry, whatever it holds: a NOP, a call marked
 * FLEXSC_ENTRY_MAY_BLOCK, one to refuse; or makes a held call again
 * (rerun: its FLEXSC_PENDING_* bits, counted already; as restart_syscall
 * with FLEXSC_PENDING_RESTARTBLOCK).  Its flags are read once, by the
 * caller.  Returns what flexsc_settle() does.
 */
static noinline unsigned long flexsc_run(struct flexsc_server *sv, struct flexsc_entry *e, u16 flags,
					 unsigned long rerun)
{
	struct flexsc_proc *p = sv->p;
	struct pt_regs *regs = &sv->regs;
	bool restartblock = rerun & FLEXSC_PENDING_RESTARTBLOCK;
	unsigned int nr = restartblock ? __NR_restart_syscall : READ_ONCE(e->nr);
	bool may_block = flags & FLEXSC_ENTRY_MAY_BLOCK;
	long ret;

	if (unlikely(flags & FLEXSC_ENTRY_NOP)) {
		this_cpu_inc(p->counts->nops);
		e->ret = 0;
		return 0;
	}
	if (unlikely(nr >= NR_syscalls)) {
		e->ret = -ENOSYS;
		return 0;
	}
	nr = array_index_nospec(nr, NR_syscalls); /* as do_syscall_64 does */
	if (!rerun)
		this_cpu_inc(p->counts->calls[nr]);
	flexsc_load_args(regs, e, nr);
	/* restart_syscall continues a call checked when it started. */
	if (!restartblock && flexsc_refused(nr, regs)) {
		e->ret = -EPERM;
		return 0;
	}
	/* A filter installed later with TSYNC reaches this thread too. */
	if (unlikely(flexsc_seccomp_active())) {
		e->ret = -EPERM;
		return 0;
	}
	if (may_block && sv->slot >= 0)
		WRITE_ONCE(p->control->servers[sv->slot].nr, nr);
	ret = flexsc_dispatch(sv, nr);
	if (may_block && sv->slot >= 0)
		WRITE_ONCE(p->control->servers[sv->slot].nr, -1);
	return flexsc_settle(sv, e, ret);
}

/*
 * The common case of flexsc_run(), kept short: no flags (read by the
 * caller), a call that runs on a server whatever its arguments, no seccomp
 * filter.  Everything else goes to flexsc_run().
 */
static __always_inline unsigned long flexsc_run_plain(struct flexsc_server *sv, struct flexsc_entry *e, u16 flags)
{
	unsigned int nr = READ_ONCE(e->nr);
	long ret;

	if (unlikely(flags || nr >= NR_syscalls))
		return flexsc_run(sv, e, flags, 0);
	nr = array_index_nospec(nr, NR_syscalls);
	if (unlikely(flexsc_call_kind[nr] != FLEXSC_CALL_REMOTE || flexsc_seccomp_active()))
		return flexsc_run(sv, e, flags, 0);
	this_cpu_inc(sv->p->counts->calls[nr]);
	flexsc_load_args(&sv->regs, e, nr);
	ret = flexsc_dispatch(sv, nr);
	if (unlikely(IS_ERR_VALUE(ret)))
		return flexsc_settle(sv, e, ret);
	e->ret = ret;
	return 0;
}

/*
 * Whether the call just run raised SIGPIPE or SIGXFSZ at this thread (a
 * write that failed with EPIPE or EFBIG; the signals are blocked here):
 * the submitter must get it, which userspace does.
 */
static bool flexsc_raised_caller_signal(const struct flexsc_entry *e)
{
	bool raised;

	if (e->ret != -EPIPE && e->ret != -EFBIG)
		return false;
	spin_lock_irq(&current->sighand->siglock);
	raised = sigismember(&current->pending.signal, SIGPIPE) ||
		 sigismember(&current->pending.signal, SIGXFSZ);
	spin_unlock_irq(&current->sighand->siglock);
	return raised;
}

/* Why a server goes back to userspace with an entry held. */
static u32 flexsc_hold_reason(unsigned long rerun, bool caller_signal)
{
	if (rerun)
		return FLEXSC_SERVE_SIGNAL;
	return caller_signal ? FLEXSC_SERVE_CALLER_SIGNAL : FLEXSC_SERVE_TASK_WORK;
}

/* Holds entry i of r, BUSY, for this thread's next SERVE call. */
static void flexsc_hold(struct flexsc_server *sv, struct flexsc_region *r, unsigned int i,
			unsigned long rerun)
{
	struct flexsc_held_entry *h;

	/* A pass runs only with nothing held, and stops at the first it holds. */
	if (WARN_ON_ONCE(sv->held->n == FLEXSC_SHIM_MAX_PENDING))
		return;
	h = &sv->held->e[sv->held->n++];
	kref_get(&r->ref);
	h->region = r;
	h->index = i;
	h->rerun = rerun;
	if (rerun & FLEXSC_PENDING_RESTARTBLOCK)
		h->restart = current->restart_block;
}

/*
 * What a previous call of this thread left pending: publishes the entries
 * whose task work has run on the way out, makes the interrupted calls
 * again.  Returns why some are still held (FLEXSC_SERVE_*), or 0.
 */
static u32 flexsc_finish_pending(struct flexsc_server *sv)
{
	struct flexsc_held *held = sv->held;
	unsigned int i, n = held->n, kept = 0;
	u32 reason = 0;

	for (i = 0; i < n; i++) {
		struct flexsc_held_entry *h = &held->e[i];
		struct flexsc_entry *e = &h->region->entries[h->index];
		bool caller_signal = false;

		if (h->rerun & FLEXSC_PENDING_RESTARTBLOCK)
			current->restart_block = h->restart;
		if (h->rerun) {
			h->rerun = flexsc_run(sv, e, READ_ONCE(e->flags), h->rerun);
			caller_signal = !h->rerun && flexsc_raised_caller_signal(e);
		}
		if (h->rerun & FLEXSC_PENDING_RESTARTBLOCK)
			h->restart = current->restart_block;
		if (h->rerun || caller_signal || task_work_pending(current)) {
			held->e[kept++] = *h;
			reason = reason ?: flexsc_hold_reason(h->rerun, caller_signal);
			continue;
		}
		flexsc_publish(sv->p, h->region, e);
		kref_put(&h->region->ref, flexsc_region_free);
	}
	held->n = kept;
	return reason;
}

/* This thread's held entries, taken out of the process's list, or none. */
static struct flexsc_held *flexsc_take_held(struct flexsc_proc *p)
{
	struct flexsc_held *h, *found = NULL;

	spin_lock(&p->serving_lock);
	list_for_each_entry(h, &p->held, node) {
		if (h->task == current) {
			list_del(&h->node);
			found = h;
			break;
		}
	}
	spin_unlock(&p->serving_lock);
	if (found)
		put_task_struct(found->task);
	return found;
}

/* Keeps held entries for this thread's next call, or frees an empty record. */
static void flexsc_keep_held(struct flexsc_proc *p, struct flexsc_held *held)
{
	if (!held->n) {
		kfree(held);
		return;
	}
	held->task = get_task_struct(current);
	spin_lock(&p->serving_lock);
	list_add(&held->node, &p->held);
	spin_unlock(&p->serving_lock);
}

/* At release: what threads left held is dropped, BUSY for good. */
static void flexsc_drop_held(struct flexsc_proc *p)
{
	struct flexsc_held *held, *next;
	unsigned int i;

	list_for_each_entry_safe(held, next, &p->held, node) {
		for (i = 0; i < held->n; i++)
			kref_put(&held->e[i].region->ref, flexsc_region_free);
		put_task_struct(held->task);
		kfree(held);
	}
}

/* Why the server must go back to userspace, or 0. */
static u32 flexsc_must_return(struct flexsc_server *sv)
{
	if (READ_ONCE(sv->p->leaving))
		return FLEXSC_SERVE_LEAVE;
	if (signal_pending(current) || freezing(current))
		return FLEXSC_SERVE_SIGNAL;
	/* CPU-time limits and timers reach a thread as task work. */
	if (task_work_pending(current))
		return FLEXSC_SERVE_TASK_WORK;
	return 0;
}

/*
 * A pass looks at why it must go back to userspace every this many
 * entries it claims, whatever their regions, before a call marked
 * FLEXSC_ENTRY_MAY_BLOCK, and after a call a signal cut short; the serve
 * loop looks before every pass.  Task work is looked at after every call.
 */
#define FLEXSC_CHECK_EVERY 16

/*
 * A server stops looking for work, or for a region (it yields, leaves
 * SERVE, leaves its CPU in a call, or is wanted off it): what it would
 * drain goes to the servers still looking, which scan again.  Where it
 * then stops counting as ready, before `ready` falls, whose full barrier
 * orders the two: a server about to sleep sees one or the other.
 */
static void flexsc_let_go(struct flexsc_proc *p)
{
	/* A server that sees the news sees the region free (the serve loop reads `handoffs` with acquire). */
	smp_mb__before_atomic();
	atomic_long_inc(&p->handoffs);
}

/*
 * A scan of a region goes on past its budget, for what was posted since,
 * while it has claimed fewer than this (the last look may add one more
 * batch): a pass costs a few atomics and calls, worth spreading over more
 * than one poster's batch, and other regions wait about this long at most.
 */
#define FLEXSC_VISIT_CLAIMS 256

/*
 * More budget for the scan, once it has claimed what it was given: what
 * was posted since the pass last looked (*looked), or 0.  The serve loop
 * keeps its own look (seen_posted): a post to a region this pass has gone
 * past makes another pass.
 */
static u64 flexsc_posted_since(struct flexsc_server *sv, u64 *looked)
{
	u64 posted = flexsc_posted(sv->p), more = posted - *looked;

	*looked = posted;
	return more;
}

/*
 * A scan tells the waiters of the entries it made DONE: spinning ones
 * (`completed`) of the first at once and then of every 16, parked ones
 * (a wake-up) only when it stops, goes on for what was posted since, or
 * reaches a call that may sleep, which is when it tells the spinning ones
 * of the rest.  `fresh` counts the entries made DONE since then.
 */
static __always_inline void flexsc_announce_fresh(struct flexsc_server *sv, unsigned int fresh)
{
	if ((fresh & 15) == 1)
		flexsc_announce(sv->p->control, fresh == 1 ? 1 : 16);
}

static void flexsc_tell_waiters(struct flexsc_server *sv, struct flexsc_region *r, unsigned int fresh)
{
	if (!fresh)
		return;
	if ((fresh - 1) & 15)
		flexsc_announce(sv->p->control, (fresh - 1) & 15);
	flexsc_wake_waiters(r);
	sv->unwoken = NULL;
}

/* The entry after entry i, round the region. */
static unsigned int flexsc_next(const struct flexsc_region *r, unsigned int i)
{
	return i + 1 < r->nentries ? i + 1 : 0;
}

/*
 * Evidence that a server asleep in a call does not stall the others: the
 * entries of batches a server began while another was asleep in a call.
 */
static void flexsc_count_overlap(struct flexsc_server *sv, bool overlapping, u64 entries)
{
	if (overlapping && entries)
		this_cpu_add(sv->p->counts->overlapped, entries);
}

/*
 * Whether a pass must look at more than the next entry after a call: it
 * lost its region, the scheduler wants the CPU, it is time to look for
 * signals, or the call was cut short.  One test on the common path (under
 * TCG each branch ends a translated block).
 */
static __always_inline bool flexsc_look_up(struct flexsc_server *sv, u64 claimed)
{
	return READ_ONCE(sv->drain_lost) | need_resched() | !(claimed % FLEXSC_CHECK_EVERY) |
	       (sv->s->reason != 0);
}

/*
 * One pass over every region: claims and runs what is SUBMITTED, publishing
 * each entry at once and telling its waiters in batches.  A region another
 * server drains is skipped.  Each region is
 * scanned from after its last claim, and the pass stops after `budget`
 * claims, what was posted and not yet claimed, or what was posted since
 * (a visit of up to FLEXSC_VISIT_CLAIMS): it does not read the lines
 * posters are busy with.  Stopping early is safe: an entry left behind
 * means one claimed was not counted yet, and its post is still to bump
 * `posted`, which makes another pass.  Sets sv->s->reason when the server
 * must go back to userspace.
 */
static noinline __section(".text.flexsc_pass") __aligned(PAGE_SIZE) void flexsc_pass(struct flexsc_server *sv,
												 u64 budget)
{
	unsigned int n = READ_ONCE(sv->p->nslots), k;
	u64 claimed = 0, looked = sv->seen_posted;

	for (k = 0; k < n && claimed < budget; k++) {
		unsigned int slot = (sv->next_slot + k) % n;
		struct flexsc_region *r = flexsc_get_region(sv->p, slot);
		unsigned int i, j, last = UINT_MAX, fresh = 0;
		u64 visit_start = claimed, batch_start = claimed;
		bool overlapping, handing_over = false;

		if (!r)
			continue;
		/*
		 * Another server drains it and claims what is posted there: it
		 * scans again when `posted` moves, and lets go (`handoffs`)
		 * when it leaves its CPU in a call, is wanted off it, yields or
		 * leaves.  (On x86 a failed cmpxchg is a full barrier too: the
		 * drainer that lets go and reads `posted` sees our post, or we
		 * see the region free.)
		 */
		if (atomic_cmpxchg_acquire(&r->drainer, 0, 1)) {
			kref_put(&r->ref, flexsc_region_free);
			continue;
		}
		sv->drain_lost = false;
		WRITE_ONCE(sv->draining, r);
		overlapping = atomic_read(&sv->p->blocked) > 0;
		/* From after the last claim: where posters put the next entries. */
		i = READ_ONCE(r->cursor);
		for (j = 0; j < r->nentries; j++, i = flexsc_next(r, i)) {
			struct flexsc_entry *e = &r->entries[i];
			unsigned long rerun;
			bool caller_signal;
			u16 flags;

			if (claimed == budget) {
				u64 more = claimed - visit_start < FLEXSC_VISIT_CLAIMS ? flexsc_posted_since(sv, &looked) : 0;

				if (!more)
					break;
				/* The posters' next batch, after the last claim: a lap from here. */
				budget += more;
				j = 0;
				flexsc_tell_waiters(sv, r, fresh);
				fresh = 0;
				flexsc_count_overlap(sv, overlapping, claimed - batch_start);
				overlapping = atomic_read(&sv->p->blocked) > 0;
				batch_start = claimed;
			}
			if (smp_load_acquire(&e->status) != FLEXSC_SUBMITTED)
				continue;
			/*
			 * A call that may sleep starts only when nothing sends the
			 * server back; and the parked waiters of what is DONE need
			 * not wait for it.
			 */
			flags = READ_ONCE(e->flags);
			if (unlikely(flags & FLEXSC_ENTRY_MAY_BLOCK)) {
				sv->s->reason = flexsc_must_return(sv);
				if (sv->s->reason)
					break;
				flexsc_tell_waiters(sv, r, fresh);
				fresh = 0;
			}
			/* Posters leave a SUBMITTED entry alone; other servers, the region. */
			WRITE_ONCE(e->status, FLEXSC_BUSY);
			claimed++;
			sv->unflushed++;
			last = i;
			rerun = flexsc_run_plain(sv, e, flags);
			caller_signal = !rerun && flexsc_raised_caller_signal(e);
			if (unlikely(rerun || caller_signal || task_work_pending(current))) {
				/* Finished by the next call, once back from userspace. */
				flexsc_hold(sv, r, i, rerun);
				sv->s->reason = flexsc_hold_reason(rerun, caller_signal);
				break;
			}
			smp_store_release(&e->status, FLEXSC_DONE);
			/* For the preempt notifier, should a later call sleep (a store, not a test). */
			sv->unwoken = r;
			flexsc_announce_fresh(sv, ++fresh);
			if (unlikely(flexsc_look_up(sv, claimed))) {
				/* It left its CPU in that call and let go of the region: others drain it. */
				if (READ_ONCE(sv->drain_lost))
					break;
				/* Its CPU is wanted: it gives the region up before it gives the CPU up. */
				if (need_resched()) {
					handing_over = true;
					break;
				}
				/* Signals, LEAVE, a freeze: looked at every few entries, not every one. */
				if (!(claimed % FLEXSC_CHECK_EVERY))
					sv->s->reason = flexsc_must_return(sv);
				if (sv->s->reason)
					break;
			}
		}
		flexsc_count_overlap(sv, overlapping, claimed - batch_start);
		WRITE_ONCE(sv->draining, NULL);
		if (!sv->drain_lost) {
			if (last != UINT_MAX)
				WRITE_ONCE(r->cursor, flexsc_next(r, last));
			/*
			 * Its claims and entries DONE before the next drainer's
			 * scan.  (The locked kref_put below then orders this store
			 * before the serve loop's look at `posted`: a server that
			 * skipped the region saw it taken, or we see its post.)
			 */
			atomic_set_release(&r->drainer, 0);
			if (handing_over)
				flexsc_let_go(sv->p);
		}
		flexsc_tell_waiters(sv, r, fresh);
		/* The irq_work may still be waking this region's waiters. */
		irq_work_sync(&sv->wake_spare);
		kref_put(&r->ref, flexsc_region_free);
		if (sv->s->reason) {
			sv->next_slot = slot;
			break;
		}
		cond_resched();
	}
	atomic64_add(sv->unflushed, &sv->p->claimed);
	sv->unflushed = 0;
	sv->executed += claimed; /* every claimed entry ran */
	if (!sv->s->reason)
		sv->next_slot = n ? (sv->next_slot + 1) % n : 0;
}

/*
 * Whether there is work the server's last pass could not see: new posts,
 * or regions let go by a server (flexsc_let_go()).
 */
static bool flexsc_news(const struct flexsc_server *sv)
{
	return flexsc_posted(sv->p) != sv->seen_posted ||
	       atomic_long_read(&sv->p->handoffs) != sv->seen_handoffs;
}

/* Wakes one sleeping server (they wait exclusively). */
static void flexsc_wake_server(struct flexsc_proc *p)
{
	atomic_long_inc(&p->wakes);
	wake_up(&p->servers);
}

/*
 * Another task wants this CPU (most likely a server at work) and another
 * server is ready: FlexSC runs one syscall thread per core at a time, so
 * an idle spare gives the core up.  It sleeps until a wake-up (a poster's
 * when no server is ready, or a blocked server's), unless its leaving
 * would leave no server ready.
 */
static bool flexsc_crowded(struct flexsc_proc *p)
{
	return !single_task_running() && atomic_read((atomic_t *)&p->control->ready) > 1;
}

static void flexsc_yield(struct flexsc_server *sv)
{
	struct flexsc_proc *p = sv->p;
	atomic_t *ready = (atomic_t *)&p->control->ready;
	long wakes = atomic_long_read(&p->wakes);

	flexsc_let_go(p);
	/* A full barrier: a poster that reads `ready` after it wakes one. */
	if (atomic_dec_return(ready) > 0)
		wait_event_interruptible_exclusive(p->servers, atomic_long_read(&p->wakes) != wakes ||
								       READ_ONCE(p->leaving) || freezing(current));
	atomic_inc(ready);
}

/*
 * Nothing to do for the whole spin: announce the sleep, look once more, and
 * sleep until a poster wakes us (FLEXSC_IOC_WAKE), a LEAVE or a signal.
 */
static void flexsc_sleep(struct flexsc_server *sv)
{
	struct flexsc_proc *p = sv->p;
	atomic_t *ready = (atomic_t *)&p->control->ready;

	/* atomic_dec_return() is a full barrier before the look at `posted`. */
	atomic_dec_return(ready);
	if (!flexsc_news(sv))
		wait_event_interruptible_exclusive(p->servers, flexsc_news(sv) ||
								       READ_ONCE(p->leaving) || freezing(current));
	atomic_inc(ready);
}

/*
 * Blocking, as FlexSC does it: a server that goes to sleep inside a call
 * stops counting as ready (posters then wake a server themselves) and, if
 * it was the last ready one, wakes a sleeping one for what waits.  It also
 * wakes the parked waiters of entries it has made DONE: they must not wait
 * for a call that may take as long as it likes.  This runs in the
 * scheduler with the runqueue locked: the wake-ups go through irq_work.  A
 * server that is merely preempted stays on the runqueue and stays ready.
 */
static void flexsc_server_sched_out(struct preempt_notifier *pn, struct task_struct *next)
{
	struct flexsc_server *sv = container_of(pn, struct flexsc_server, notifier);
	bool asleep;

	if (!READ_ONCE(sv->in_call))
		return;
	asleep = !READ_ONCE(current->on_rq);
	/* Before the region goes: the next drainer's batch counts as overlapping. */
	if (asleep) {
		sv->blocked = true;
		atomic_inc(&sv->p->blocked);
	}
	/*
	 * Off its CPU inside a call, asleep or preempted: the rest of the
	 * region it drains must not wait for it; its BUSY entry stays its own.
	 * (Outside a call a claim may be half done: a server preempted there
	 * keeps the region until it runs again.)
	 */
	if (sv->draining && !sv->drain_lost) {
		sv->drain_lost = true;
		atomic_set_release(&sv->draining->drainer, 0);
		flexsc_let_go(sv->p);
	}
	if (!asleep)
		return;
	/* Its claims count now: other servers' budgets must not wait for it. */
	atomic64_add(sv->unflushed, &sv->p->claimed);
	sv->unflushed = 0;
	if (atomic_dec_return((atomic_t *)&sv->p->control->ready) == 0)
		WRITE_ONCE(sv->spare_due, true);
	/* Parked waiters of entries already DONE must not wait for this call. */
	if (sv->unwoken)
		WRITE_ONCE(sv->waking, sv->unwoken);
	if (READ_ONCE(sv->spare_due) || READ_ONCE(sv->waking))
		irq_work_queue(&sv->wake_spare);
}

static void flexsc_server_sched_in(struct preempt_notifier *pn, int cpu)
{
	struct flexsc_server *sv = container_of(pn, struct flexsc_server, notifier);

	if (!sv->blocked)
		return;
	sv->blocked = false;
	atomic_inc((atomic_t *)&sv->p->control->ready);
	atomic_dec(&sv->p->blocked);
}

static void flexsc_wake_spare(struct irq_work *work)
{
	struct flexsc_server *sv = container_of(work, struct flexsc_server, wake_spare);
	struct flexsc_region *r = xchg(&sv->waking, NULL);

	if (xchg(&sv->spare_due, false))
		flexsc_wake_server(sv->p);
	if (r)
		flexsc_wake_waiters(r);
}

static struct preempt_ops flexsc_server_preempt_ops = {
	.sched_in = flexsc_server_sched_in,
	.sched_out = flexsc_server_sched_out,
};

struct flexsc_serving {
	struct list_head node;
	struct task_struct *task;
};

/*
 * Whether the caller is a serving thread running an entry: an entry that
 * calls into /dev/flexsc would nest SERVE calls without bound (or wait for
 * its own completion).
 */
static bool flexsc_is_serving(struct flexsc_proc *p)
{
	struct flexsc_serving *sv;
	bool found = false;

	spin_lock(&p->serving_lock);
	list_for_each_entry(sv, &p->serving, node)
		if (sv->task == current)
			found = true;
	spin_unlock(&p->serving_lock);
	return found;
}

/* A free slot of control->servers for the calling server, or -1. */
static int flexsc_claim_slot(struct flexsc_proc *p)
{
	int i;

	for (i = 0; i < FLEXSC_SHIM_MAX_SERVERS; i++) {
		if (cmpxchg(&p->control->servers[i].tid, 0, current->pid) == 0) {
			WRITE_ONCE(p->control->servers[i].nr, -1);
			return i;
		}
	}
	return -1;
}

static long flexsc_serve(struct flexsc_proc *p, struct flexsc_shim_serve __user *uarg)
{
	struct flexsc_serving serving = { .task = current };
	struct flexsc_server sv = { .p = p };
	struct flexsc_shim_serve *s;
	sigset_t blocked, saved;
	unsigned int k;
	long ret = 0;

	s = kmalloc(sizeof(*s), GFP_KERNEL);
	if (!s)
		return -ENOMEM;
	if (copy_from_user(s, uarg, sizeof(*s))) {
		kfree(s);
		return -EFAULT;
	}
	if ((s->flags & ~FLEXSC_SERVE_PUBLISH_ONLY) ||
	    s->stop_signal > _NSIG || s->stop_signal == SIGKILL || s->stop_signal == SIGSTOP ||
	    (s->cpu >= 0 && (s->cpu >= nr_cpu_ids || !cpu_online(s->cpu))) || s->cpu < -1) {
		kfree(s);
		return -EINVAL;
	}
	sv.held = flexsc_take_held(p);
	if (!sv.held)
		sv.held = kzalloc(sizeof(*sv.held), GFP_KERNEL);
	if (!sv.held) {
		kfree(s);
		return -ENOMEM;
	}
	sv.s = s;
	sv.slot = flexsc_claim_slot(p);
	atomic_inc((atomic_t *)&p->control->ready);
	s->executed = 0;
	s->reason = 0;
	s->spin_ns = min_t(u64, s->spin_ns, FLEXSC_MAX_SPIN_NS);
	spin_lock(&p->serving_lock);
	list_add(&serving.node, &p->serving);
	spin_unlock(&p->serving_lock);

	/* Only the signals that stop or kill a server get through. */
	siginitsetinv(&blocked, sigmask(SIGKILL) | sigmask(SIGSTOP));
	if (s->stop_signal)
		sigdelset(&blocked, s->stop_signal);
	sigprocmask(SIG_SETMASK, &blocked, &saved);

	preempt_notifier_init(&sv.notifier, &flexsc_server_preempt_ops);
	init_irq_work(&sv.wake_spare, flexsc_wake_spare);
	preempt_disable();
	preempt_notifier_register(&sv.notifier);
	preempt_enable();

	s->reason = flexsc_finish_pending(&sv);
	if (s->reason) /* interrupted again, more task work, or a signal to send on: back to userspace first */
		goto out;
	if (s->flags & FLEXSC_SERVE_PUBLISH_ONLY) {
		s->reason = FLEXSC_SERVE_PUBLISHED;
		goto out;
	}
	if (s->cpu >= 0) {
		ret = set_cpus_allowed_ptr(current, cpumask_of(s->cpu));
		if (ret)
			goto out;
	}
	sv.seen_posted = flexsc_posted(p);
	for (;;) {
		u64 idle_since, budget;

		s->reason = flexsc_must_return(&sv);
		if (s->reason)
			break;
		/* Read before the pass: a post during it is seen by the next one. */
		sv.seen_posted = flexsc_posted(p);
		sv.seen_handoffs = atomic_long_read_acquire(&p->handoffs);
		/*
		 * Claims other servers have yet to add only make it larger.  Not
		 * positive: every counted entry is claimed, and one not counted
		 * yet comes with a change of `posted`.
		 */
		budget = sv.seen_posted - (u64)atomic64_read(&p->claimed);
		if ((s64)budget > 0)
			flexsc_pass(&sv, budget);
		if (s->reason)
			break;
		if (flexsc_crowded(p)) {
			flexsc_yield(&sv);
			continue;
		}
		/* Passes repeat only for new posts: no rescans of busy lines. */
		if (flexsc_news(&sv))
			continue;
		/* One idle server spins, while it has its CPU; the others sleep at once. */
		if (atomic_cmpxchg(&p->spinner, 0, 1) == 0) {
			idle_since = local_clock();
			while (!flexsc_news(&sv) && !flexsc_must_return(&sv) &&
			       local_clock() - idle_since < s->spin_ns && single_task_running()) {
				cpu_relax();
				cond_resched();
			}
			atomic_set(&p->spinner, 0);
		}
		if (!flexsc_news(&sv) && !flexsc_must_return(&sv))
			flexsc_sleep(&sv);
	}
out:
	preempt_disable();
	preempt_notifier_unregister(&sv.notifier);
	preempt_enable();
	irq_work_sync(&sv.wake_spare); /* it uses sv */
	flexsc_let_go(p);
	/* The last ready server leaving: a poster that saw it ready woke nobody. */
	if (atomic_dec_return((atomic_t *)&p->control->ready) == 0)
		flexsc_wake_server(p);
	if (sv.slot >= 0)
		smp_store_release(&p->control->servers[sv.slot].tid, 0);
	spin_lock(&p->serving_lock);
	list_del(&serving.node);
	spin_unlock(&p->serving_lock);
	sigprocmask(SIG_SETMASK, &saved, NULL);
	s->executed = sv.executed;
	s->npending = sv.held->n;
	for (k = 0; k < sv.held->n; k++)
		s->pending[k] = sv.held->e[k].region->uaddr +
				(unsigned long)sv.held->e[k].index * FLEXSC_ENTRY_SIZE;
	flexsc_keep_held(p, sv.held);
	if (copy_to_user(uarg, s, sizeof(*s)))
		ret = -EFAULT;
	kfree(s);
	return ret;
}

/* ---- waiting ----------------------------------------------------------- */

static bool flexsc_any_done(struct flexsc_region *r, int index)
{
	unsigned int i;

	if (index >= 0)
		return smp_load_acquire(&r->entries[index].status) == FLEXSC_DONE;
	for (i = 0; i < r->nentries; i++)
		if (smp_load_acquire(&r->entries[i].status) == FLEXSC_DONE)
			return true;
	return false;
}

static long flexsc_wait(struct flexsc_proc *p, struct flexsc_shim_wait __user *uarg)
{
	struct flexsc_shim_wait a;
	struct flexsc_region *r;
	long left;

	if (copy_from_user(&a, uarg, sizeof(a)))
		return -EFAULT;
	r = flexsc_get_region(p, a.id);
	if (!r)
		return -ENOENT;
	if (a.index < -1 || (a.index >= 0 && (u32)a.index >= r->nentries)) {
		kref_put(&r->ref, flexsc_region_free);
		return -EINVAL;
	}
	a.id = array_index_nospec(a.id, FLEXSC_SHIM_MAX_REGIONS);
	if (a.index >= 0)
		a.index = array_index_nospec(a.index, r->nentries);
	/*
	 * Ends when the entry is done, when the region is unregistered, or at a
	 * NOTIFY, even one made before this call (the waiter's owner may have
	 * been told to look at something else between its last look and here).
	 */
	if (!a.timeout_ns) {
		left = wait_event_interruptible(r->waiters, flexsc_any_done(r, a.index) ||
							    atomic_read(&r->notified) ||
							    rcu_access_pointer(p->regions[a.id]) != r);
	} else {
		left = wait_event_interruptible_hrtimeout(r->waiters,
							  flexsc_any_done(r, a.index) ||
							  atomic_read(&r->notified) ||
							  rcu_access_pointer(p->regions[a.id]) != r,
							  ns_to_ktime(a.timeout_ns));
		if (left == -ETIME)
			left = -ETIMEDOUT;
	}
	if (!left)
		atomic_set(&r->notified, 0);
	kref_put(&r->ref, flexsc_region_free);
	return left;
}

/* ---- the device -------------------------------------------------------- */

/* Sums the servers' per-CPU counters. */
static long flexsc_stats(struct flexsc_proc *p, struct flexsc_shim_stats __user *uarg)
{
	struct flexsc_shim_stats *st;
	unsigned int nr;
	long ret = 0;
	int cpu;

	st = kzalloc(sizeof(*st), GFP_KERNEL);
	if (!st)
		return -ENOMEM;
	for_each_possible_cpu(cpu) {
		const struct flexsc_counts *c = per_cpu_ptr(p->counts, cpu);

		for (nr = 0; nr < FLEXSC_SHIM_COUNTED_CALLS; nr++)
			st->calls[nr] += READ_ONCE(c->calls[nr]);
		st->nops += READ_ONCE(c->nops);
		st->cancelled += READ_ONCE(c->cancelled);
		st->overlapped += READ_ONCE(c->overlapped);
	}
	if (copy_to_user(uarg, st, sizeof(*st)))
		ret = -EFAULT;
	kfree(st);
	return ret;
}

/* Wakes a region's waiters: the process completed entries itself, or has news for the owner. */
static long flexsc_notify(struct flexsc_proc *p, __u32 __user *uarg)
{
	struct flexsc_region *r;
	__u32 id;

	if (get_user(id, uarg))
		return -EFAULT;
	r = flexsc_get_region(p, id);
	if (!r)
		return -ENOENT;
	atomic_set(&r->notified, 1);
	wake_up_all(&r->waiters);
	kref_put(&r->ref, flexsc_region_free);
	return 0;
}

static long flexsc_ioctl(struct file *file, unsigned int cmd, unsigned long arg)
{
	void __user *uarg = (void __user *)arg;
	struct flexsc_proc *p;

	if (cmd == FLEXSC_IOC_ATTACH)
		return flexsc_attach(file, uarg);
	p = flexsc_proc_of(file);
	if (IS_ERR(p))
		return PTR_ERR(p);
	if (flexsc_is_serving(p))
		return -EDEADLK;
	switch (cmd) {
	case FLEXSC_IOC_REGISTER:
		return flexsc_register(p, uarg);
	case FLEXSC_IOC_UNREGISTER:
		return flexsc_unregister(p, uarg);
	case FLEXSC_IOC_SERVE:
		return flexsc_serve(p, uarg);
	case FLEXSC_IOC_WAIT:
		return flexsc_wait(p, uarg);
	case FLEXSC_IOC_WAKE:
		flexsc_wake_server(p);
		return 0;
	case FLEXSC_IOC_LEAVE:
		WRITE_ONCE(p->leaving, true);
		wake_up_all(&p->servers);
		return 0;
	case FLEXSC_IOC_NOTIFY:
		return flexsc_notify(p, uarg);
	case FLEXSC_IOC_STATS:
		return flexsc_stats(p, uarg);
	default:
		return -ENOTTY;
	}
}

static int flexsc_open(struct inode *inode, struct file *file)
{
	/* misc_open left the miscdevice there: attaching fills it. */
	file->private_data = NULL;
	return 0;
}

/* The last reference to the descriptor: no ioctl is running. */
static int flexsc_release(struct inode *inode, struct file *file)
{
	struct flexsc_proc *p = file->private_data;
	unsigned int slot;

	if (!p)
		return 0;
	mutex_lock(&flexsc_procs_lock);
	list_del(&p->node);
	mutex_unlock(&flexsc_procs_lock);
	/* No server is left: no reader of the lists either. */
	flexsc_drop_held(p);
	for (slot = 0; slot < p->nslots; slot++) {
		struct flexsc_region *r;

		mutex_lock(&p->regions_lock);
		r = flexsc_unlink_region(p, slot);
		mutex_unlock(&p->regions_lock);
		if (r)
			flexsc_drop_region(r);
	}
	vunmap(p->control);
	unpin_user_pages_dirty_lock(p->control_pages, FLEXSC_SHIM_CONTROL_PAGES, true);
	mmdrop(p->mm);
	put_pid(p->tgid);
	free_percpu(p->counts);
	kvfree(p);
	return 0;
}

static const struct file_operations flexsc_fops = {
	.owner = THIS_MODULE,
	.open = flexsc_open,
	.unlocked_ioctl = flexsc_ioctl,
	.release = flexsc_release,
	.llseek = noop_llseek,
};

static struct miscdevice flexsc_dev = {
	.minor = MISC_DYNAMIC_MINOR,
	.name = "flexsc",
	.fops = &flexsc_fops,
	.mode = 0666,
};

static int __init flexsc_init(void)
{
	int ret = flexsc_resolve_dispatcher();

	if (ret)
		return ret;
	flexsc_build_call_maps();
	preempt_notifier_inc();
	ret = misc_register(&flexsc_dev);
	if (ret) {
		preempt_notifier_dec();
		return ret;
	}
	pr_info("ready: /dev/flexsc (dispatcher %s)\n", flexsc_x64_sys_call ? "x64_sys_call" : "sys_call_table");
	return 0;
}

static void __exit flexsc_exit(void)
{
	misc_deregister(&flexsc_dev);
	preempt_notifier_dec();
}

module_init(flexsc_init);
module_exit(flexsc_exit);

MODULE_LICENSE("GPL");
MODULE_DESCRIPTION("flexsc: exception-less system calls served by threads that stay in the kernel");
