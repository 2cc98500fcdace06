// The C++ standard library's threads under --threads mn, as natively:
// std::thread, std::mutex, std::condition_variable, std::async and
// thread_local with destructors, and pthread_exit unwinding C++ frames.
// Prints one line per check, then how many threads it made; exits 1 on
// the first failure, saying which.
#include <pthread.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <cstdlib>
#include <deque>
#include <future>
#include <mutex>
#include <numeric>
#include <thread>
#include <vector>

#define CHECK(cond)                                                                \
  do {                                                                             \
    if (!(cond)) {                                                                 \
      std::fprintf(stderr, "cxx_program: %s:%d: %s\n", __FILE__, __LINE__, #cond); \
      std::exit(1);                                                                \
    }                                                                              \
  } while (0)

namespace {

std::atomic<int> g_created{0};

template <class F>
std::thread start(F&& f) {
  ++g_created;
  return std::thread(std::forward<F>(f));
}

// A mutex held across sleeps while others contend: no update is lost, and
// nobody holds it twice.
void check_mutex() {
  std::mutex m;
  long counter = 0;
  int inside = 0;
  std::vector<std::thread> t;
  for (int i = 0; i < 8; ++i)
    t.push_back(start([&] {
      for (int k = 0; k < 200; ++k) {
        std::lock_guard lock(m);
        CHECK(++inside == 1);
        ++counter;
        if (k % 50 == 0) std::this_thread::sleep_for(std::chrono::microseconds(200));
        --inside;
      }
    }));
  for (auto& x : t) x.join();
  CHECK(counter == 8 * 200);
  std::puts("ok std::mutex: 1600 updates from 8 threads, held across sleeps");
}

// A bounded queue: producers and consumers on one mutex and two
// condition variables, every item delivered once.
void check_condition_variables() {
  std::mutex m;
  std::condition_variable not_full, not_empty;
  std::deque<int> q;
  constexpr int kItems = 2000, kProducers = 4, kConsumers = 4;
  std::atomic<long> sum{0};
  std::atomic<int> taken{0};
  std::vector<std::thread> t;
  for (int p = 0; p < kProducers; ++p)
    t.push_back(start([&, p] {
      for (int i = p; i < kItems; i += kProducers) {
        std::unique_lock lock(m);
        not_full.wait(lock, [&] { return q.size() < 8; });
        q.push_back(i);
        not_empty.notify_one();
      }
    }));
  for (int c = 0; c < kConsumers; ++c)
    t.push_back(start([&] {
      for (;;) {
        std::unique_lock lock(m);
        if (!not_empty.wait_for(lock, std::chrono::seconds(30),
                                [&] { return !q.empty() || taken >= kItems; }))
          CHECK(!"a consumer waited 30 s");
        if (q.empty()) return;
        sum += q.front();
        q.pop_front();
        if (++taken == kItems) not_empty.notify_all();
        not_full.notify_one();
      }
    }));
  for (auto& x : t) x.join();
  CHECK(taken == kItems);
  CHECK(sum == static_cast<long>(kItems) * (kItems - 1) / 2);
  // A timed wait that nobody ends times out.
  std::unique_lock lock(m);
  const auto before = std::chrono::steady_clock::now();
  CHECK(not_empty.wait_for(lock, std::chrono::milliseconds(20)) == std::cv_status::timeout);
  CHECK(std::chrono::steady_clock::now() - before >= std::chrono::milliseconds(19));
  std::puts("ok std::condition_variable: 2000 items through a queue of 8, a wait timing out");
}

// std::async on threads of its own, their results and exceptions.
void check_async() {
  std::vector<std::future<long>> f;
  for (long i = 0; i < 16; ++i) {
    ++g_created;
    f.push_back(std::async(std::launch::async, [i] {
      std::this_thread::sleep_for(std::chrono::milliseconds(1));
      if (i == 7) throw std::runtime_error("seven");
      return i * i;
    }));
  }
  long total = 0;
  for (long i = 0; i < 16; ++i) {
    if (i == 7) {
      try {
        f[i].get();
        CHECK(!"the exception was lost");
      } catch (const std::runtime_error&) {
      }
    } else {
      total += f[i].get();
    }
  }
  CHECK(total == 1240 - 49);
  std::puts("ok std::async: 16 results, an exception carried to get()");
}

// thread_local objects are each thread's own and destroyed at its exit.
std::atomic<int> g_destroyed{0};
struct Counted {
  int value = 0;
  ~Counted() { ++g_destroyed; }
};
thread_local Counted t_counted;

void check_thread_local() {
  std::vector<std::thread> t;
  for (int i = 0; i < 6; ++i)
    t.push_back(start([i] {
      t_counted.value = i;
      for (int k = 0; k < 10; ++k) {
        std::this_thread::yield();
        CHECK(t_counted.value == i);
      }
    }));
  for (auto& x : t) x.join();
  CHECK(g_destroyed == 6);
  std::puts("ok thread_local: per thread, destroyed at each thread's exit");
}

// pthread_exit from C++ runs the destructors of the frames it leaves.
std::atomic<int> g_unwound{0};
struct Guard {
  ~Guard() { ++g_unwound; }
};
template <int Depth>
void leave_from_deep() {
  Guard g;
  if constexpr (Depth == 0)
    pthread_exit(reinterpret_cast<void*>(9));
  else
    leave_from_deep<Depth - 1>();
}

void check_pthread_exit() {
  pthread_t t;
  CHECK(pthread_create(
            &t, nullptr,
            [](void*) -> void* {
              Guard outer;
              leave_from_deep<3>();
              return nullptr;
            },
            nullptr) == 0);
  ++g_created;
  void* r = nullptr;
  CHECK(pthread_join(t, &r) == 0);
  CHECK(r == reinterpret_cast<void*>(9));
  CHECK(g_unwound == 5);
  std::puts("ok pthread_exit: 5 destructors run on the way out");
}

}  // namespace

int main() {
  check_mutex();
  check_condition_variables();
  check_async();
  check_thread_local();
  check_pthread_exit();
  std::printf("threads created: %d\n", g_created.load());
  return 0;
}
