#include "workq.h"

#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <stdlib.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "ev.h"
#include "xalloc.h"

#define WORKQ_MAX_THREADS 64

struct fifo {
	struct workq_item *head, *tail;
};

struct workq {
	pthread_mutex_t mu;
	pthread_cond_t cv;		/* todo has items, or stop */
	struct fifo todo, done;
	int stop;
	int nidle;			/* workers waiting on cv */
	int efd;			/* done went from empty to not */
	struct ev_io *io;
	pthread_t *threads;
	int nthreads;
	size_t scratch_max;
	size_t busy;			/* loop side: submitted, done not run */
};

static void fifo_push(struct fifo *f, struct workq_item *it)
{
	it->next = NULL;
	if (f->tail)
		f->tail->next = it;
	else
		f->head = it;
	f->tail = it;
}

static struct workq_item *fifo_pop(struct fifo *f)
{
	struct workq_item *it = f->head;

	if (it && (f->head = it->next) == NULL)
		f->tail = NULL;
	return it;
}

static void *worker(void *arg)
{
	struct workq *wq = arg;
	struct buf scratch;
	struct workq_item *it;
	uint64_t one = 1;
	int signal;

	buf_init(&scratch, wq->scratch_max);
	pthread_mutex_lock(&wq->mu);
	for (;;) {
		while (wq->todo.head == NULL && !wq->stop) {
			wq->nidle++;
			pthread_cond_wait(&wq->cv, &wq->mu);
			wq->nidle--;
		}
		if ((it = fifo_pop(&wq->todo)) == NULL)
			break;
		pthread_mutex_unlock(&wq->mu);
		it->work(it, &scratch);
		pthread_mutex_lock(&wq->mu);
		/* One wake-up per batch: the loop takes the whole list. */
		signal = wq->done.head == NULL;
		fifo_push(&wq->done, it);
		if (signal)
			(void)!write(wq->efd, &one, sizeof(one));
	}
	pthread_mutex_unlock(&wq->mu);
	buf_free(&scratch);
	return NULL;
}

/* Runs the dones of the items finished so far: only those, so that a
 * done submitting more cannot keep the loop here. */
static void run_done(struct workq *wq)
{
	struct workq_item *it, *next;
	uint64_t n;

	(void)!read(wq->efd, &n, sizeof(n));
	pthread_mutex_lock(&wq->mu);
	it = wq->done.head;
	wq->done.head = wq->done.tail = NULL;
	pthread_mutex_unlock(&wq->mu);
	for (; it; it = next) {
		next = it->next;
		wq->busy--;
		it->done(it);
	}
}

static void on_event(struct ev_io *w, int fd, unsigned events, void *arg)
{
	(void)w;
	(void)fd;
	(void)events;
	run_done(arg);
}

static void stop_threads(struct workq *wq)
{
	pthread_mutex_lock(&wq->mu);
	wq->stop = 1;
	pthread_cond_broadcast(&wq->cv);
	pthread_mutex_unlock(&wq->mu);
	for (int i = 0; i < wq->nthreads; i++)
		pthread_join(wq->threads[i], NULL);
	wq->nthreads = 0;
}

static void destroy(struct workq *wq)
{
	stop_threads(wq);
	ev_io_stop(wq->io);
	if (wq->efd >= 0)
		close(wq->efd);
	pthread_cond_destroy(&wq->cv);
	pthread_mutex_destroy(&wq->mu);
	free(wq->threads);
	free(wq);
}

int workq_new(struct ev_loop *loop, int nthreads, size_t scratch_max,
    struct workq **out)
{
	struct workq *wq;
	sigset_t all, old;
	int r;

	if (nthreads < 1 || nthreads > WORKQ_MAX_THREADS)
		return -EINVAL;
	wq = xcalloc(1, sizeof(*wq));
	pthread_mutex_init(&wq->mu, NULL);
	pthread_cond_init(&wq->cv, NULL);
	wq->scratch_max = scratch_max;
	wq->threads = xcalloc((size_t)nthreads, sizeof(*wq->threads));
	wq->efd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (wq->efd < 0 || (wq->io = ev_io_start(loop, wq->efd, EV_READ,
	    on_event, wq)) == NULL) {
		r = -errno;
		destroy(wq);
		return r;
	}
	/* Workers take no signal: the loop thread takes SIGTERM through its
	 * signalfd, and a worker left with the default action would die of
	 * it (the mask is inherited from the thread that creates them). */
	sigfillset(&all);
	pthread_sigmask(SIG_SETMASK, &all, &old);
	for (r = 0; r == 0 && wq->nthreads < nthreads; wq->nthreads++)
		if ((r = pthread_create(&wq->threads[wq->nthreads], NULL, worker,
		    wq)) != 0)
			break;
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	if (r != 0) {
		destroy(wq);
		return -r;
	}
	*out = wq;
	return 0;
}

void workq_submit(struct workq *wq, struct workq_item *it)
{
	wq->busy++;
	pthread_mutex_lock(&wq->mu);
	fifo_push(&wq->todo, it);
	/* A busy worker takes it when it comes back: the futex call is
	 * only for a sleeping one (futex calls were 8% of the loop thread
	 * under log load). */
	if (wq->nidle > 0)
		pthread_cond_signal(&wq->cv);
	pthread_mutex_unlock(&wq->mu);
}

size_t workq_busy(const struct workq *wq)
{
	return wq->busy;
}

void workq_drain(struct workq *wq)
{
	struct pollfd p = { .fd = wq->efd, .events = POLLIN };

	/* Bounded by the items there are: each round runs at least one
	 * done, and dones submit only a finite chain of more. */
	while (wq->busy > 0) {
		if (poll(&p, 1, -1) < 0 && errno != EINTR)
			break;
		run_done(wq);
	}
}

void workq_free(struct workq *wq)
{
	if (wq == NULL)
		return;
	workq_drain(wq);
	destroy(wq);
}
