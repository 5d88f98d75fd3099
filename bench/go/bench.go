// go_bench: the Go side of bench/compare's workloads (issue 16), written as a
// Go user would write them: goroutines and sync.WaitGroup, channels, sync.Mutex,
// default runtime settings (GOMAXPROCS = the core count unless the workload
// says otherwise). The standard library only, so it builds offline.
//
//	go_bench fanout [-n 100000] [-warm]   spawn n goroutines that return at once, wait all (WaitGroup)
//	go_bench sleep [-n 100000] [-ms 100]  n goroutines each time.Sleep; wall and peak RSS
//	go_bench parked [-n 1000000]          n goroutines blocked on a channel; RSS growth per goroutine
//	go_bench mutex [-hogs 2]              4 goroutines x 250,000 sync.Mutex lock/unlock around a counter,
//	                                      with `hogs` busy-looping processes beside (started and killed here)
//	go_bench skynet [-reps 3] [-untimed 1]    skynet 1M through channels, GOMAXPROCS 2
//	go_bench pingpong [-reps 3] [-untimed 1]  unbuffered channel round trips between two goroutines,
//	                                          GOMAXPROCS 1 and 2
//
// Each result is one JSON line in bench/compare's LINES format: workload,
// impl, metric, value, unit, lower_better, group. Cold numbers need a fresh
// process per sample: bench/compare runs fanout, sleep, parked and mutex once
// per process, interleaved with the other implementations' processes.
// The shapes and sizes match bench/cold_bench.cpp, core_bench.cpp and
// sync_bench.cpp; docs/performance.md lists where they differ.
package main

import (
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"runtime"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

type record struct {
	Workload    string  `json:"workload"`
	Impl        string  `json:"impl"`
	Metric      string  `json:"metric"`
	Value       float64 `json:"value"`
	Unit        string  `json:"unit"`
	LowerBetter bool    `json:"lower_better"`
	Group       string  `json:"group"`
}

func emit(workload, metric string, value float64, unit string) {
	emitImpl(workload, impl(), metric, value, unit)
}

func emitImpl(workload, im, metric string, value float64, unit string) {
	group := fmt.Sprintf("%dw", runtime.GOMAXPROCS(0)) // pairs with greenfiber's row of as many workers
	b, err := json.Marshal(record{workload, im, metric, value, unit, true, group})
	if err != nil {
		fail("%v", err)
	}
	fmt.Println(string(b))
}

// count names n as the workloads do: 100k, 1M, 2500.
func count(n int) string {
	switch {
	case n%1000000 == 0:
		return fmt.Sprintf("%dM", n/1000000)
	case n%1000 == 0:
		return fmt.Sprintf("%dk", n/1000)
	}
	return fmt.Sprint(n)
}

func impl() string { return fmt.Sprintf("go GOMAXPROCS=%d", runtime.GOMAXPROCS(0)) }

func fail(format string, a ...interface{}) {
	fmt.Fprintf(os.Stderr, "go_bench: "+format+"\n", a...)
	os.Exit(2)
}

// residentBytes is the resident set size from /proc/self/statm (its second field, in pages).
func residentBytes() float64 {
	b, err := os.ReadFile("/proc/self/statm")
	if err != nil {
		fail("read /proc/self/statm: %v", err)
	}
	var size, resident int64
	if _, err := fmt.Sscan(string(b), &size, &resident); err != nil {
		fail("parse /proc/self/statm: %v", err)
	}
	return float64(resident * int64(os.Getpagesize()))
}

// peakRSSMiB is the process's high-water resident set (getrusage ru_maxrss, KiB on Linux).
func peakRSSMiB() float64 {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		fail("getrusage: %v", err)
	}
	return float64(ru.Maxrss) / 1024
}

// fanout spawns n goroutines that return at once and waits for all: the
// time per goroutine.
func fanout(n int) time.Duration {
	var sum int64
	var wg sync.WaitGroup
	t0 := time.Now()
	wg.Add(n)
	for i := 0; i < n; i++ {
		go func(i int) {
			defer wg.Done()
			atomic.AddInt64(&sum, int64(i)) // the work: its index into a shared sum
		}(i)
	}
	wg.Wait()
	d := time.Since(t0)
	if want := int64(n) * int64(n-1) / 2; atomic.LoadInt64(&sum) != want {
		fail("fanout: sum %d, want %d", sum, want)
	}
	return d
}

// sleepFanout: n goroutines each sleep d, then count themselves; the wall
// from the first spawn to the last wake-up.
func sleepFanout(n int, d time.Duration) time.Duration {
	var woke int64
	var wg sync.WaitGroup
	t0 := time.Now()
	wg.Add(n)
	for i := 0; i < n; i++ {
		go func() {
			defer wg.Done()
			time.Sleep(d)
			atomic.AddInt64(&woke, 1)
		}()
	}
	wg.Wait()
	wall := time.Since(t0)
	if atomic.LoadInt64(&woke) != int64(n) {
		fail("sleep: %d of %d goroutines woke", woke, n)
	}
	return wall
}

// parked: n goroutines block on one channel; the resident growth from before
// the first spawn to when all have started, per goroutine.
func parked(n int) float64 {
	r0 := residentBytes()
	release := make(chan struct{})
	var started, finished sync.WaitGroup
	started.Add(n)
	finished.Add(n)
	for i := 0; i < n; i++ {
		go func() {
			started.Done()
			<-release
			finished.Done()
		}()
	}
	started.Wait()
	r1 := residentBytes()
	close(release)
	finished.Wait()
	return (r1 - r0) / float64(n)
}

const (
	lockers   = 4
	locksEach = 250000
)

// contended: `lockers` goroutines each take one sync.Mutex locksEach times
// around a counter increment (sync_bench's mutex workload); ns per lock.
func contended() float64 {
	var mu sync.Mutex
	var counter int64
	var wg sync.WaitGroup
	t0 := time.Now()
	wg.Add(lockers)
	for k := 0; k < lockers; k++ {
		go func() {
			defer wg.Done()
			for i := 0; i < locksEach; i++ {
				mu.Lock()
				counter++
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	d := time.Since(t0)
	if counter != lockers*locksEach {
		fail("mutex: counter %d, want %d", counter, lockers*locksEach)
	}
	return float64(d.Nanoseconds()) / float64(lockers*locksEach)
}

// startHogs starts n busy-looping shell processes (the same hog every
// implementation's program starts), each killed if this process dies.
func startHogs(n int) []*exec.Cmd {
	var hogs []*exec.Cmd
	for i := 0; i < n; i++ {
		c := exec.Command("/bin/sh", "-c", "while :; do :; done")
		c.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
		if err := c.Start(); err != nil {
			fail("start hog: %v", err)
		}
		hogs = append(hogs, c)
	}
	time.Sleep(50 * time.Millisecond) // let the hogs reach their loops
	return hogs
}

func stopHogs(hogs []*exec.Cmd) {
	for _, c := range hogs {
		_ = c.Process.Kill()
		_ = c.Wait() // reaps it; the error is the kill
	}
}

const skynetLeaves = 1000000

// skynet as Go users write it: each node spawns its 10 children and sums
// what they send back on one channel.
func skynet(c chan<- int64, num, size int64) {
	if size == 1 {
		c <- num
		return
	}
	rc := make(chan int64)
	child := size / 10
	for i := int64(0); i < 10; i++ {
		go skynet(rc, num+i*child, child)
	}
	var sum int64
	for i := 0; i < 10; i++ {
		sum += <-rc
	}
	c <- sum
}

// skynetSpawns: goroutines below the root (1,111,110), as core_bench counts.
const skynetSpawns = 1111110

func runSkynet() time.Duration {
	c := make(chan int64)
	t0 := time.Now()
	go skynet(c, 0, skynetLeaves)
	sum := <-c
	d := time.Since(t0)
	if want := int64(skynetLeaves) * (skynetLeaves - 1) / 2; sum != want {
		fail("skynet: sum %d, want %d", sum, want)
	}
	return d
}

const roundTrips = 200000

// pingpong: the main goroutine sends 0..roundTrips-1 on ping, a second one
// echoes each back on pong (two unbuffered channels, as sync_bench).
func pingpong() float64 {
	ping, pong := make(chan int), make(chan int)
	done := make(chan int64)
	go func() {
		var sum int64
		for i := 0; i < roundTrips; i++ {
			v := <-ping
			sum += int64(v)
			pong <- v
		}
		done <- sum
	}()
	t0 := time.Now()
	for i := 0; i < roundTrips; i++ {
		ping <- i
		if <-pong != i {
			fail("pingpong: wrong value echoed")
		}
	}
	d := time.Since(t0)
	if sum := <-done; sum != int64(roundTrips)*(roundTrips-1)/2 {
		fail("pingpong: sum %d", sum)
	}
	return float64(d.Nanoseconds()) / roundTrips
}

func main() {
	if len(os.Args) < 2 {
		fail("usage: go_bench fanout|sleep|parked|mutex|skynet|pingpong [flags]")
	}
	fs := flag.NewFlagSet(os.Args[1], flag.ExitOnError)
	n := fs.Int("n", 0, "goroutines (0: the workload's default)")
	warm := fs.Bool("warm", false, "fanout: run one untimed batch first")
	ms := fs.Int("ms", 100, "sleep: milliseconds each goroutine sleeps")
	hogs := fs.Int("hogs", 2, "mutex: busy-looping processes beside")
	reps := fs.Int("reps", 3, "skynet, pingpong: timed repetitions")
	untimed := fs.Int("untimed", 1, "skynet, pingpong: untimed repetitions first")
	if err := fs.Parse(os.Args[2:]); err != nil {
		fail("%v", err)
	}
	size := func(def int) int {
		if *n < 0 {
			fail("-n must be positive")
		}
		if *n == 0 {
			return def
		}
		return *n
	}
	switch os.Args[1] {
	case "fanout":
		k := size(100000)
		name := "fan-out " + count(k) + " cold"
		if *warm {
			fanout(k)
			name = "fan-out " + count(k) + " warm"
		}
		d := fanout(k)
		emit(name, "", float64(d.Nanoseconds())/float64(k), "ns per fiber")
	case "sleep":
		k := size(100000)
		wall := sleepFanout(k, time.Duration(*ms)*time.Millisecond)
		name := fmt.Sprintf("sleep fan-out %s x %d ms", count(k), *ms)
		emit(name, "wall", float64(wall.Nanoseconds())/1e6, "ms")
		emit(name, "peak RSS", peakRSSMiB(), "MiB")
	case "parked":
		k := size(1000000)
		emit(count(k)+" parked fibers", "RSS", parked(k)/1024, "KiB per fiber")
	case "mutex":
		h := startHogs(*hogs)
		v := contended()
		stopHogs(h)
		name := "contended mutex"
		if *hogs > 0 {
			name = fmt.Sprintf("contended mutex + %d CPU hogs", *hogs)
		}
		emit(name, "", v, "ns per lock")
	case "skynet":
		runtime.GOMAXPROCS(2)
		for i := 0; i < *untimed; i++ {
			runSkynet()
		}
		for i := 0; i < *reps; i++ {
			d := runSkynet()
			emitImpl("skynet 1M", impl(), "", float64(d.Nanoseconds())/skynetSpawns, "ns per fiber")
		}
	case "pingpong":
		for _, p := range []int{1, 2} {
			runtime.GOMAXPROCS(p)
			for i := 0; i < *untimed; i++ {
				pingpong()
			}
			for i := 0; i < *reps; i++ {
				emitImpl("unbuffered ping-pong", impl(), "", pingpong(), "ns per round trip")
			}
		}
	default:
		fail("unknown workload %q", os.Args[1])
	}
}
