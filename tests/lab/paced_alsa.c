/* A sound card's pace for a file, for the voice-quality bench (daemon/benches/quality.rs): the
 * receiving baresip plays into ALSA's `file` plugin (`audio_player alsa,file:PATH`), which writes
 * every frame to PATH and hands it to the `null` device — and `null` takes any amount at once, so
 * baresip's player would drain its jitter buffer as fast as it can. Loaded with LD_PRELOAD, this
 * makes snd_pcm_writei return only when a card playing at the stream's rate would have played the
 * frames, so baresip's jitter buffer and player run as they would against a device, and PATH holds
 * exactly what it played out: its buffer's waits, stretches and concealment included. Each
 * stream has its own clock; a writer more than 100 ms behind starts it anew, as a card would
 * after an underrun. */
#define _GNU_SOURCE
#include <alsa/asoundlib.h>
#include <dlfcn.h>
#include <pthread.h>
#include <time.h>

typedef snd_pcm_sframes_t (*writei_fn)(snd_pcm_t *, const void *, snd_pcm_uframes_t);

/* One clock per open stream: baresip may play a tone on a second stream while a call's starts. */
struct clock {
    snd_pcm_t *pcm;
    long long start;             /* ns, CLOCK_MONOTONIC */
    unsigned long long played;   /* frames since start */
    unsigned rate;
};

#define CLOCKS 8
static struct clock clocks[CLOCKS];
static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;

static long long now_ns(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec * 1000000000LL + t.tv_nsec;
}

static unsigned rate_of(snd_pcm_t *pcm) {
    snd_pcm_hw_params_t *params;
    unsigned value = 0;
    int dir = 0;
    snd_pcm_hw_params_alloca(&params);
    if (snd_pcm_hw_params_current(pcm, params) < 0 ||
        snd_pcm_hw_params_get_rate(params, &value, &dir) < 0)
        return 0;
    return value;
}

static long long due(const struct clock *c) {
    return c->start + (long long)(c->played * 1000000000ULL / c->rate);
}

/* The stream's clock, started anew for a new stream or one more than 100 ms behind; NULL when
 * its rate is unknown. Called with `lock` held. */
static struct clock *clock_of(snd_pcm_t *pcm, long long now) {
    struct clock *c = NULL, *oldest = &clocks[0];
    for (int i = 0; i < CLOCKS; i++) {
        if (clocks[i].pcm == pcm) c = &clocks[i];
        if (clocks[i].start < oldest->start) oldest = &clocks[i];
    }
    if (c && !c->rate) return NULL; /* unknown for this stream, said once: not paced */
    if (c && now <= due(c) + 100000000LL) return c;
    if (!c) c = oldest;
    c->pcm = pcm;
    c->rate = rate_of(pcm);
    c->start = now;
    c->played = 0;
    /* Into baresip's log: a check that the pace is the stream's. */
    fprintf(stderr, "paced_alsa: a new clock at %u Hz\n", c->rate);
    return c->rate ? c : NULL;
}

snd_pcm_sframes_t snd_pcm_writei(snd_pcm_t *pcm, const void *buffer, snd_pcm_uframes_t size) {
    static writei_fn real;
    if (!real) real = (writei_fn)dlsym(RTLD_NEXT, "snd_pcm_writei");
    pthread_mutex_lock(&lock);
    struct clock *c = clock_of(pcm, now_ns());
    pthread_mutex_unlock(&lock);
    snd_pcm_sframes_t written = real(pcm, buffer, size);
    if (c && written > 0) {
        pthread_mutex_lock(&lock);
        c->played += (unsigned long long)written;
        long long until = due(c);
        pthread_mutex_unlock(&lock);
        struct timespec t = {until / 1000000000LL, until % 1000000000LL};
        clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &t, NULL);
    }
    return written;
}
