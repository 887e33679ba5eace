/*
 * kmu11 benchmark baseline: EC P-256 session key pairs straight through the
 * module's C_GetFunctionList, with no binding in between.
 *
 *   raw <module.so> <token label> <user pin> <warmup ms> <measure ms> <threads>...
 *   raw <module.so> <token label> <user pin> --rss <warmup pairs> <pairs> <threads>
 *
 * C_Initialize(CKF_OS_LOCKING_OK) once; then for each thread count: that many
 * threads, each with its own RW session, loop C_GenerateKeyPair + 2x
 * C_DestroyObject. Counting starts after the warm-up and stops after the
 * measured window, so thread start-up and drain are not in the figure.
 * --rss instead makes an exact number of pairs and reports the growth of the
 * resident set: the module's own growth, the baseline for the bindings'.
 * Prints one JSON object on stdout.
 *
 * The PKCS#11 declarations below are written from the v2.40 specification
 * (Linux ABI: no structure packing, CK_ULONG = unsigned long).
 */
#include <dlfcn.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

typedef unsigned long ck_ulong;
typedef ck_ulong ck_rv;
typedef ck_ulong ck_handle;
typedef unsigned char ck_bbool;

typedef struct { ck_ulong type; void *value; ck_ulong len; } ck_attr;
typedef struct { ck_ulong mech; void *param; ck_ulong param_len; } ck_mech;
typedef struct {
  void *create_mutex, *destroy_mutex, *lock_mutex, *unlock_mutex;
  ck_ulong flags;
  void *reserved;
} ck_init_args;

typedef ck_rv (*fn_initialize)(void *);
typedef ck_rv (*fn_slot_list)(ck_bbool, ck_ulong *, ck_ulong *);
typedef ck_rv (*fn_token_info)(ck_ulong, void *);
typedef ck_rv (*fn_open_session)(ck_ulong, ck_ulong, void *, void *, ck_handle *);
typedef ck_rv (*fn_close_session)(ck_handle);
typedef ck_rv (*fn_login)(ck_handle, ck_ulong, const unsigned char *, ck_ulong);
typedef ck_rv (*fn_destroy)(ck_handle, ck_handle);
typedef ck_rv (*fn_gen_pair)(ck_handle, ck_mech *, ck_attr *, ck_ulong, ck_attr *,
                             ck_ulong, ck_handle *, ck_handle *);
typedef void (*fn_any)(void);

/* CK_FUNCTION_LIST, in the specification's order, up to C_GenerateKeyPair. */
typedef struct {
  unsigned char version[2];
  fn_initialize initialize;
  fn_initialize finalize;
  fn_any get_info, get_function_list;
  fn_slot_list get_slot_list;
  fn_any get_slot_info;
  fn_token_info get_token_info;
  fn_any get_mechanism_list, get_mechanism_info, init_token, init_pin, set_pin;
  fn_open_session open_session;
  fn_close_session close_session;
  fn_any close_all_sessions, get_session_info, get_operation_state, set_operation_state;
  fn_login login;
  fn_any logout, create_object, copy_object;
  fn_destroy destroy_object;
  fn_any get_object_size, get_attribute_value, set_attribute_value;
  fn_any find_objects_init, find_objects, find_objects_final;
  fn_any encrypt_init, encrypt, encrypt_update, encrypt_final;
  fn_any decrypt_init, decrypt, decrypt_update, decrypt_final;
  fn_any digest_init, digest, digest_update, digest_key, digest_final;
  fn_any sign_init, sign, sign_update, sign_final, sign_recover_init, sign_recover;
  fn_any verify_init, verify, verify_update, verify_final, verify_recover_init, verify_recover;
  fn_any digest_encrypt_update, decrypt_digest_update, sign_encrypt_update, decrypt_verify_update;
  fn_any generate_key;
  fn_gen_pair generate_key_pair;
} ck_functions;
_Static_assert(__builtin_offsetof(ck_functions, generate_key_pair) == 60 * sizeof(void *),
               "C_GenerateKeyPair is entry 59 of CK_FUNCTION_LIST");

enum {
  CKA_TOKEN_ = 0x001, CKA_PRIVATE_ = 0x002, CKA_LABEL_ = 0x003,
  CKA_SENSITIVE_ = 0x103, CKA_ENCRYPT_ = 0x104, CKA_DECRYPT_ = 0x105, CKA_WRAP_ = 0x106,
  CKA_UNWRAP_ = 0x107, CKA_SIGN_ = 0x108, CKA_VERIFY_ = 0x10a, CKA_DERIVE_ = 0x10c,
  CKA_EXTRACTABLE_ = 0x162, CKA_EC_PARAMS_ = 0x180,
  CKM_EC_KEY_PAIR_GEN_ = 0x1040,
  CKF_OS_LOCKING_OK_ = 0x2, CKF_RW_SESSION_ = 0x2, CKF_SERIAL_SESSION_ = 0x4,
  CKU_USER_ = 1, CKR_OK_ = 0, CKR_USER_ALREADY_LOGGED_IN_ = 0x100,
};

static ck_functions *p11;
static const char *pin;
static atomic_int stop;
static atomic_long budget; /* pairs left to start; only when counted */
static int counted;

static void check(ck_rv rv, const char *what) {
  if (rv != CKR_OK_) {
    fprintf(stderr, "raw: %s failed: CKR 0x%lx\n", what, rv);
    exit(1);
  }
}

static double now_s(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return ts.tv_sec + ts.tv_nsec / 1e9;
}

/* Process CPU time (user + system, all threads) in seconds, and context switches. */
static double cpu_s(long *switches) {
  struct rusage ru;
  getrusage(RUSAGE_SELF, &ru);
  *switches = ru.ru_nvcsw + ru.ru_nivcsw;
  return ru.ru_utime.tv_sec + ru.ru_stime.tv_sec + (ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e6;
}

static void sleep_ms(long ms) {
  struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
  while (nanosleep(&ts, &ts) != 0) {}
}

/* The same template the JS benchmarks send (bench/template.mjs). */
static unsigned char P256_OID[] = {0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07};
static char LABEL[] = "bench";
static ck_bbool T = 1, F = 0;
#define BOOL_ATTR(t, v) {t, &v, 1}

typedef struct {
  ck_handle session;
  _Atomic unsigned long pairs;
  pthread_t thread;
} worker;

static void *work(void *arg) {
  worker *w = arg;
  ck_mech mech = {CKM_EC_KEY_PAIR_GEN_, NULL, 0};
  ck_attr pub[] = {
      BOOL_ATTR(CKA_TOKEN_, F),   BOOL_ATTR(CKA_PRIVATE_, F), BOOL_ATTR(CKA_VERIFY_, T),
      BOOL_ATTR(CKA_ENCRYPT_, F), BOOL_ATTR(CKA_WRAP_, F),    BOOL_ATTR(CKA_DERIVE_, F),
      {CKA_LABEL_, LABEL, sizeof LABEL - 1},
      {CKA_EC_PARAMS_, P256_OID, sizeof P256_OID},
  };
  ck_attr priv[] = {
      BOOL_ATTR(CKA_TOKEN_, F),     BOOL_ATTR(CKA_PRIVATE_, T),     BOOL_ATTR(CKA_SENSITIVE_, T),
      BOOL_ATTR(CKA_EXTRACTABLE_, T), BOOL_ATTR(CKA_SIGN_, T),      BOOL_ATTR(CKA_DECRYPT_, F),
      BOOL_ATTR(CKA_UNWRAP_, F),    BOOL_ATTR(CKA_DERIVE_, F),
      {CKA_LABEL_, LABEL, sizeof LABEL - 1},
  };
  while (!atomic_load_explicit(&stop, memory_order_relaxed)) {
    if (counted && atomic_fetch_sub(&budget, 1) <= 0) break;
    ck_handle hpub, hpriv;
    check(p11->generate_key_pair(w->session, &mech, pub, sizeof pub / sizeof *pub, priv,
                                 sizeof priv / sizeof *priv, &hpub, &hpriv),
          "C_GenerateKeyPair");
    check(p11->destroy_object(w->session, hpub), "C_DestroyObject");
    check(p11->destroy_object(w->session, hpriv), "C_DestroyObject");
    atomic_fetch_add_explicit(&w->pairs, 1, memory_order_relaxed);
  }
  return NULL;
}

static unsigned long total(worker *ws, int n) {
  unsigned long sum = 0;
  for (int i = 0; i < n; i++) sum += atomic_load_explicit(&ws[i].pairs, memory_order_relaxed);
  return sum;
}

static ck_ulong find_slot(const char *label) {
  ck_ulong n = 0;
  check(p11->get_slot_list(1, NULL, &n), "C_GetSlotList");
  ck_ulong *slots = calloc(n ? n : 1, sizeof *slots);
  check(p11->get_slot_list(1, slots, &n), "C_GetSlotList");
  char padded[32];
  memset(padded, ' ', sizeof padded);
  memcpy(padded, label, strlen(label) < 32 ? strlen(label) : 32);
  for (ck_ulong i = 0; i < n; i++) {
    /* CK_TOKEN_INFO is ~210 bytes and starts with label[32]. */
    _Alignas(16) unsigned char info[512];
    check(p11->get_token_info(slots[i], info), "C_GetTokenInfo");
    if (memcmp(info, padded, 32) == 0) {
      ck_ulong slot = slots[i];
      free(slots);
      return slot;
    }
  }
  fprintf(stderr, "raw: no token labelled '%s'\n", label);
  exit(1);
}

static worker *open_workers(ck_ulong slot, int n) {
  worker *ws = calloc(n, sizeof *ws);
  for (int i = 0; i < n; i++) {
    check(p11->open_session(slot, CKF_SERIAL_SESSION_ | CKF_RW_SESSION_, NULL, NULL, &ws[i].session),
          "C_OpenSession");
    ck_rv rv = p11->login(ws[i].session, CKU_USER_, (const unsigned char *)pin, strlen(pin));
    if (rv != CKR_USER_ALREADY_LOGGED_IN_) check(rv, "C_Login");
  }
  return ws;
}

static void start(worker *ws, int n) {
  atomic_store(&stop, 0);
  for (int i = 0; i < n; i++) pthread_create(&ws[i].thread, NULL, work, &ws[i]);
}

static void join(worker *ws, int n) {
  for (int i = 0; i < n; i++) pthread_join(ws[i].thread, NULL);
}

/* Exactly `count` pairs over n threads. */
static void make_pairs(worker *ws, int n, long count) {
  counted = 1;
  atomic_store(&budget, count);
  start(ws, n);
  join(ws, n);
  counted = 0;
}

static double rss_mib(void) {
  long pages = 0, resident = 0;
  FILE *f = fopen("/proc/self/statm", "r");
  if (!f || fscanf(f, "%ld %ld", &pages, &resident) != 2) {
    fprintf(stderr, "raw: cannot read /proc/self/statm\n");
    exit(1);
  }
  fclose(f);
  return resident * (double)sysconf(_SC_PAGESIZE) / (1024.0 * 1024.0);
}

static void timed(ck_ulong slot, long warmup_ms, long measure_ms, char **threads, int count) {
  printf("{\"impl\":\"raw_c\",\"results\":[");
  for (int a = 0; a < count; a++) {
    int n = atoi(threads[a]);
    worker *ws = open_workers(slot, n);
    start(ws, n);
    sleep_ms(warmup_ms);
    long s0, s1;
    unsigned long c0 = total(ws, n);
    double t0 = now_s(), u0 = cpu_s(&s0);
    sleep_ms(measure_ms);
    unsigned long c1 = total(ws, n);
    double t1 = now_s(), u1 = cpu_s(&s1);
    atomic_store(&stop, 1);
    join(ws, n);
    /* Every pair was destroyed, so closing leaves nothing behind. */
    for (int i = 0; i < n; i++) check(p11->close_session(ws[i].session), "C_CloseSession");
    unsigned long pairs = c1 - c0;
    printf("%s{\"concurrency\":%d,\"pairs\":%lu,\"seconds\":%.4f,\"pairs_per_s\":%.1f,"
           "\"cpu_us_per_pair\":%.1f,\"switches_per_pair\":%.2f}",
           a ? "," : "", n, pairs, t1 - t0, pairs / (t1 - t0),
           pairs ? (u1 - u0) * 1e6 / pairs : 0.0, pairs ? (double)(s1 - s0) / pairs : 0.0);
    fflush(stdout);
    free(ws);
  }
  printf("]}\n");
}

static void rss_run(ck_ulong slot, long warmup, long count, int n) {
  worker *ws = open_workers(slot, n);
  make_pairs(ws, n, warmup);
  double before = rss_mib(), t0 = now_s();
  make_pairs(ws, n, count);
  double t1 = now_s(), after = rss_mib();
  for (int i = 0; i < n; i++) check(p11->close_session(ws[i].session), "C_CloseSession");
  free(ws);
  printf("{\"impl\":\"raw_c\",\"results\":[],\"rss\":{\"generations\":%ld,\"warmup\":%ld,"
         "\"concurrency\":%d,\"pairs_per_s\":%.1f,\"rss_before_mib\":%.2f,\"rss_after_mib\":%.2f,"
         "\"rss_growth_mib\":%.3f}}\n",
         count, warmup, n, count / (t1 - t0), before, after, after - before);
}

int main(int argc, char **argv) {
  int rss = argc == 8 && strcmp(argv[4], "--rss") == 0;
  if (argc < 7 || (strcmp(argv[4], "--rss") == 0 && !rss)) {
    fprintf(stderr,
            "usage: %s module.so label pin warmup_ms measure_ms threads...\n"
            "       %s module.so label pin --rss warmup_pairs pairs threads\n",
            argv[0], argv[0]);
    return 2;
  }
  void *lib = dlopen(argv[1], RTLD_NOW | RTLD_LOCAL);
  if (!lib) {
    fprintf(stderr, "raw: dlopen: %s\n", dlerror());
    return 1;
  }
  ck_rv (*get_list)(ck_functions **) = (ck_rv(*)(ck_functions **))dlsym(lib, "C_GetFunctionList");
  if (!get_list) {
    fprintf(stderr, "raw: no C_GetFunctionList\n");
    return 1;
  }
  check(get_list(&p11), "C_GetFunctionList");
  ck_init_args args = {0};
  args.flags = CKF_OS_LOCKING_OK_;
  check(p11->initialize(&args), "C_Initialize");
  pin = argv[3];
  ck_ulong slot = find_slot(argv[2]);
  if (rss) {
    rss_run(slot, atol(argv[5]), atol(argv[6]), atoi(argv[7]));
  } else {
    timed(slot, atol(argv[4]), atol(argv[5]), argv + 6, argc - 6);
  }
  check(p11->finalize(NULL), "C_Finalize");
  return 0;
}
