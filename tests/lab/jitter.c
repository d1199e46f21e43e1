/* Network jitter and loss for the voice-quality bench (daemon/benches/quality.rs), since this
 * kernel has no netem: loaded with LD_PRELOAD into the sending baresip, it holds back each UDP
 * datagram that is RTP or RTCP (first byte 0b10xxxxxx; SIP is text) for a random time, uniform
 * in [0, 2J] ms as `netem delay Jms Jms` would, and sends it from a thread of its own when due —
 * so packets arrive late by up to 2J ms and out of order — and drops L % of the RTP packets.
 * "J L S" is read (at most every 100 ms, and at each new stream) from the file named by
 * JITTER_CONTROL: 0 or no file, no delay and no loss. The draws are seeded: each new RTP stream
 * (a new SSRC: the sender's next call) starts them again from S, so two calls made with the same
 * S meet the same delays and lose the same packets — each receiver the same network. */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

typedef ssize_t (*sendto_fn)(int, const void *, size_t, int, const struct sockaddr *, socklen_t);

struct datagram {
    long long due;
    int fd, flags;
    size_t len;
    socklen_t addr_len;
    struct sockaddr_storage addr;
    unsigned char data[2048];
};

#define QUEUE 4096
static struct datagram *heap[QUEUE];
static int queued;
static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t wake;
static pthread_once_t once = PTHREAD_ONCE_INIT;
static sendto_fn real_sendto;
static int jitter_ms, loss_percent;
static unsigned seed;
static long long checked;
/* The draws: RTP's delays and losses apart (a loss draw never shifts the delays), RTCP's own. */
static unsigned delay_draws, loss_draws, rtcp_draws = 20261203;
static unsigned long stream_ssrc;
static int streaming;

static long long now_ns(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec * 1000000000LL + t.tv_nsec;
}

static void push(struct datagram *d) {
    int i = queued++;
    while (i > 0 && heap[(i - 1) / 2]->due > d->due) {
        heap[i] = heap[(i - 1) / 2];
        i = (i - 1) / 2;
    }
    heap[i] = d;
}

static struct datagram *pop(void) {
    struct datagram *top = heap[0], *last = heap[--queued];
    int i = 0;
    for (;;) {
        int c = 2 * i + 1;
        if (c >= queued) break;
        if (c + 1 < queued && heap[c + 1]->due < heap[c]->due) c++;
        if (heap[c]->due >= last->due) break;
        heap[i] = heap[c];
        i = c;
    }
    if (queued > 0) heap[i] = last;
    return top;
}

static void *sender(void *unused) {
    (void)unused;
    pthread_mutex_lock(&lock);
    for (;;) {
        while (queued == 0) pthread_cond_wait(&wake, &lock);
        long long due = heap[0]->due;
        if (due > now_ns()) {
            struct timespec until = {due / 1000000000LL, due % 1000000000LL};
            pthread_cond_timedwait(&wake, &lock, &until);
            continue;
        }
        struct datagram *d = pop();
        pthread_mutex_unlock(&lock);
        real_sendto(d->fd, d->data, d->len, d->flags,
                    d->addr_len ? (struct sockaddr *)&d->addr : NULL, d->addr_len);
        close(d->fd);
        free(d);
        pthread_mutex_lock(&lock);
    }
    return NULL;
}

static void init(void) {
    real_sendto = (sendto_fn)dlsym(RTLD_NEXT, "sendto");
    pthread_condattr_t attr;
    pthread_condattr_init(&attr);
    pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
    pthread_cond_init(&wake, &attr);
    pthread_t thread;
    pthread_create(&thread, NULL, sender, NULL);
    pthread_detach(thread);
}

/* Under the lock. */
static void read_control(long long now, int at_once) {
    if (!at_once && now - checked < 100000000LL) return;
    checked = now;
    const char *path = getenv("JITTER_CONTROL");
    FILE *f = path ? fopen(path, "r") : NULL;
    int ms = 0, loss = 0;
    unsigned s = 0;
    if (f) {
        if (fscanf(f, "%d %d %u", &ms, &loss, &s) < 1) ms = 0;
        fclose(f);
    }
    jitter_ms = ms;
    loss_percent = loss;
    seed = s;
}

ssize_t sendto(int fd, const void *buf, size_t len, int flags, const struct sockaddr *addr,
               socklen_t addr_len) {
    pthread_once(&once, init);
    const unsigned char *bytes = buf;
    int type = 0;
    socklen_t type_len = sizeof type;
    long long now = now_ns();
    pthread_mutex_lock(&lock);
    read_control(now, 0);
    int media = len >= 8 && (bytes[0] & 0xC0) == 0x80
                && getsockopt(fd, SOL_SOCKET, SO_TYPE, &type, &type_len) == 0 && type == SOCK_DGRAM;
    /* RTCP's packet types are 200..204 (RFC 3550 §12.1; RTP avoids 72..76 with the marker). */
    int rtp = media && len >= 12 && !(bytes[1] >= 200 && bytes[1] <= 204);
    unsigned *draws = rtp ? &delay_draws : &rtcp_draws;
    if (rtp) {
        unsigned long ssrc = (unsigned long)bytes[8] << 24 | (unsigned long)bytes[9] << 16
                             | (unsigned long)bytes[10] << 8 | bytes[11];
        if (!streaming || ssrc != stream_ssrc) {
            streaming = 1;
            stream_ssrc = ssrc;
            read_control(now, 1);
            delay_draws = 2 * seed + 1;
            loss_draws = 2 * seed + 2;
        }
        if (loss_percent > 0 && (int)(rand_r(&loss_draws) % 100) < loss_percent) {
            pthread_mutex_unlock(&lock);
            return (ssize_t)len;
        }
    }
    int delay = media && jitter_ms > 0 && len <= sizeof heap[0]->data
                && addr_len <= sizeof(struct sockaddr_storage) && queued < QUEUE;
    if (!delay) {
        pthread_mutex_unlock(&lock);
        return real_sendto(fd, buf, len, flags, addr, addr_len);
    }
    struct datagram *d = malloc(sizeof *d);
    /* Our own copy of the socket: if the caller closes it meanwhile, its number may be reused. */
    int fd_copy = d ? dup(fd) : -1;
    if (fd_copy < 0) {
        free(d);
        pthread_mutex_unlock(&lock);
        return real_sendto(fd, buf, len, flags, addr, addr_len);
    }
    d->due = now + (long long)(rand_r(draws) % (2 * jitter_ms * 1000 + 1)) * 1000LL;
    d->fd = fd_copy;
    d->flags = flags;
    d->len = len;
    d->addr_len = addr ? addr_len : 0;
    if (addr) memcpy(&d->addr, addr, addr_len);
    memcpy(d->data, buf, len);
    push(d);
    pthread_cond_signal(&wake);
    pthread_mutex_unlock(&lock);
    return (ssize_t)len;
}
