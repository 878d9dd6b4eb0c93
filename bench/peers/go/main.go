// The peers comparison's Go side (tools/peers.sh): PEERS.md's rows as Go programs, written
// for weft and timed like weft's own benchmarks (wall time, per item where the row is).
// Standard library only, so it builds offline with Debian's golang-go.
//
// Usage: peers -workload=NAME -procs=N -reps=R
// Prints one line per repetition: the figure, in the unit the workload names.
package main

import (
	"flag"
	"fmt"
	"os"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Each returns one repetition's figure.
var workloads = map[string]struct {
	unit string
	run  func() float64
}{
	"yield":      {"ns_per_yield", yieldPingPong},
	"spawn_join": {"ns_per_task", spawnJoin},
	"skynet":     {"ms", skynetRun},
	"unbuffered": {"ns_per_round_trip", unbufferedPingPong},
	"buffered":   {"ns_per_item", buffered1024},
	"mutex":      {"ns_per_lock_unlock", contendedMutex},
	"fib":        {"ms", fibRun},
	"rss":        {"bytes_per_parked_task", rssPerParkedTask},
}

const (
	yields       = 2_000_000
	spawnTasks   = 1_000_000
	skynetLeaves = 1_000_000
	roundTrips   = 500_000
	items        = 5_000_000
	mutexTasks   = 100
	mutexEach    = 20_000
	fibN         = 30
	parkedTasks  = 100_000
)

func nsPer(start time.Time, n int) float64 {
	return float64(time.Since(start).Nanoseconds()) / float64(n)
}

// Two goroutines calling Gosched in turn; per Gosched.
func yieldPingPong() float64 {
	var wg sync.WaitGroup
	start := time.Now()
	for g := 0; g < 2; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < yields/2; i++ {
				runtime.Gosched()
			}
		}()
	}
	wg.Wait()
	return nsPer(start, yields)
}

// Starts every goroutine, then joins each (Go has no join: a WaitGroup, the idiom).
func spawnJoin() float64 {
	results := make([]int, spawnTasks)
	var wg sync.WaitGroup
	start := time.Now()
	wg.Add(spawnTasks)
	for i := 0; i < spawnTasks; i++ {
		go func(i int) {
			results[i] = 1
			wg.Done()
		}(i)
	}
	wg.Wait()
	sum := 0
	for _, r := range results {
		sum += r
	}
	if sum != spawnTasks {
		fail("spawn_join: some goroutine did not run")
	}
	return nsPer(start, spawnTasks)
}

// The classic skynet: each node reads its children's sums from an unbuffered channel.
func skynet(c chan<- int64, num, size int64) {
	if size == 1 {
		c <- num
		return
	}
	sub := size / 10
	rc := make(chan int64)
	for i := int64(0); i < 10; i++ {
		go skynet(rc, num+i*sub, sub)
	}
	var sum int64
	for i := 0; i < 10; i++ {
		sum += <-rc
	}
	c <- sum
}

func skynetRun() float64 {
	c := make(chan int64, 1)
	start := time.Now()
	go skynet(c, 0, skynetLeaves)
	sum := <-c
	ms := float64(time.Since(start).Microseconds()) / 1e3
	if sum != skynetLeaves*(skynetLeaves-1)/2 {
		fail("skynet: wrong sum")
	}
	return ms
}

func unbufferedPingPong() float64 {
	ping, pong := make(chan int), make(chan int)
	go func() {
		for v := range ping {
			pong <- v
		}
		close(pong)
	}()
	start := time.Now()
	for i := 0; i < roundTrips; i++ {
		ping <- i
		if <-pong != i {
			fail("unbuffered: wrong value")
		}
	}
	r := nsPer(start, roundTrips)
	close(ping)
	return r
}

func buffered1024() float64 {
	c := make(chan int, 1024)
	done := make(chan int64)
	go func() {
		var sum int64
		for v := range c {
			sum += int64(v)
		}
		done <- sum
	}()
	start := time.Now()
	for i := 0; i < items; i++ {
		c <- i
	}
	close(c)
	sum := <-done
	r := nsPer(start, items)
	if sum != int64(items)*int64(items-1)/2 {
		fail("buffered: wrong sum")
	}
	return r
}

// 100 goroutines incrementing one counter under a sync.Mutex; per lock+unlock pair.
func contendedMutex() float64 {
	var mu sync.Mutex
	var wg sync.WaitGroup
	counter := 0
	start := time.Now()
	for g := 0; g < mutexTasks; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < mutexEach; i++ {
				mu.Lock()
				counter++
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	r := nsPer(start, mutexTasks*mutexEach)
	if counter != mutexTasks*mutexEach {
		fail("mutex: lost increments")
	}
	return r
}

// A goroutine for every call, joined with a WaitGroup (Go's join).
func fib(n int) int64 {
	if n < 2 {
		return int64(n)
	}
	var a, b int64
	var wg sync.WaitGroup
	wg.Add(2)
	go func() { a = fib(n - 1); wg.Done() }()
	go func() { b = fib(n - 2); wg.Done() }()
	wg.Wait()
	return a + b
}

func fibRun() float64 {
	start := time.Now()
	r := fib(fibN)
	ms := float64(time.Since(start).Microseconds()) / 1e3
	if r != 832040 {
		fail("fib: wrong result")
	}
	return ms
}

// Resident set size from /proc/self/statm (pages, second field).
func rssBytes() int64 {
	data, err := os.ReadFile("/proc/self/statm")
	if err != nil {
		fail("rss: " + err.Error())
	}
	fields := strings.Fields(string(data))
	pages, err := strconv.ParseInt(fields[1], 10, 64)
	if err != nil {
		fail("rss: " + err.Error())
	}
	return pages * int64(os.Getpagesize())
}

// RSS growth while parkedTasks goroutines are blocked on a channel, per goroutine.
func rssPerParkedTask() float64 {
	runtime.GC()
	before := rssBytes()
	release := make(chan struct{})
	var started, finished sync.WaitGroup
	started.Add(parkedTasks)
	finished.Add(parkedTasks)
	for i := 0; i < parkedTasks; i++ {
		go func() {
			started.Done()
			<-release
			finished.Done()
		}()
	}
	started.Wait()
	after := rssBytes()
	close(release)
	finished.Wait()
	return float64(after-before) / parkedTasks
}

func fail(msg string) {
	fmt.Fprintln(os.Stderr, "peers (go):", msg)
	os.Exit(1)
}

func main() {
	workload := flag.String("workload", "", "one of the workloads")
	procs := flag.Int("procs", 1, "GOMAXPROCS")
	reps := flag.Int("reps", 5, "repetitions")
	flag.Parse()
	w, ok := workloads[*workload]
	if !ok {
		names := make([]string, 0, len(workloads))
		for name := range workloads {
			names = append(names, name)
		}
		fail(fmt.Sprintf("unknown workload %q (one of %s)", *workload, strings.Join(names, ", ")))
	}
	if *procs < 1 || *reps < 1 {
		fail("-procs and -reps must be at least 1")
	}
	if *workload == "rss" && *reps != 1 {
		// A second repetition reuses the first one's goroutine stacks and measures nothing.
		fail("rss counts what a fresh process faults in: run it once per process (-reps=1)")
	}
	runtime.GOMAXPROCS(*procs)
	for i := 0; i < *reps; i++ {
		fmt.Printf("%.6g %s\n", w.run(), w.unit)
	}
}
