// Command clientgo is the client-go 1.20 worker of kubeasync's benchmarks.
//
// It speaks the protocol of benchmarks/worker.py: the harness starts it once per
// (client, scenario) with the same flags, it runs the scenario through client-go's typed
// clientset (Pods().List / Watch / Get; the dynamic client for "dicts"), checks every
// result as the Python workers do, and prints one JSON line: the samples, their unit, and
// the process's own CPU time per sample (user+sys from getrusage).
//
// Build it against the vendored client-go of the Kubernetes 1.20 tree:
//
//	KUBE_REAL_GO_CMD=benchmarks/clientgo /work/shared/tools/real-apiserver/build.sh
//
// which installs /opt/kube-real/bin/clientgo. --protobuf asks for
// application/vnd.kubernetes.protobuf (falling back to JSON where the server does not
// offer it; the result's content_types says what the server answered).
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io/ioutil"
	"net/http"
	"net/url"
	"os"
	"runtime"
	"runtime/pprof"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"
	clientversion "k8s.io/client-go/pkg/version"
	"k8s.io/client-go/tools/clientcmd"
)

const (
	warmupLimit    = 2.0    // seconds: a longer warm-up call counts as a sample (worker.py)
	firstEventRV   = 200000 // the benchmark server's events-N streams start here
	sentAnnotation = "bench.kubeasync.dev/sent"
	protobufType   = "application/vnd.kubernetes.protobuf"
)

var errNotSupported = errors.New("not offered")

type options struct {
	client, scenario, server, kubeconfig, profile string
	size, reps, concurrency, warmupEvents, fires  int
	budget, idleSeconds, settle                   float64
	dicts, protobuf                               bool
	namespace, name, resourceVersion, expectRV    string
}

func parseFlags() *options {
	o := &options{}
	flag.StringVar(&o.client, "client", "client-go", "the client name echoed in the result")
	flag.StringVar(&o.scenario, "scenario", "", "list | rss | get | watch | idle")
	flag.IntVar(&o.size, "size", 0, "items, requests or events")
	flag.BoolVar(&o.dicts, "dicts", false, "LIST into unstructured maps (the dynamic client)")
	flag.StringVar(&o.server, "server", "", "the benchmark server's URL (its /_bench control endpoints)")
	flag.StringVar(&o.kubeconfig, "kubeconfig", "", "the kubeconfig to connect with")
	flag.IntVar(&o.reps, "reps", 5, "samples")
	flag.Float64Var(&o.budget, "budget", 60, "seconds of samples")
	flag.IntVar(&o.concurrency, "concurrency", 50, "concurrent GETs")
	flag.IntVar(&o.warmupEvents, "warmup-events", 200, "events of the warm-up watch")
	flag.Float64Var(&o.idleSeconds, "idle-seconds", 5, "idle: seconds of CPU measurement")
	flag.IntVar(&o.fires, "fires", 50, "idle: single events fired")
	flag.Float64Var(&o.settle, "settle", 1, "idle: seconds before the memory reading")
	flag.StringVar(&o.profile, "profile", "", "write a pprof CPU profile to this path")
	flag.BoolVar(&o.protobuf, "protobuf", false, "ask for protobuf (JSON where not offered)")
	flag.StringVar(&o.namespace, "namespace", "", "default: pods-N, events-N, bench or idle")
	flag.StringVar(&o.name, "name", "small", "get: the pod's name")
	flag.StringVar(&o.resourceVersion, "resource-version", "1", "watch: start after this resourceVersion")
	flag.StringVar(&o.expectRV, "expect-last-rv", "", "watch: the last event's resourceVersion (default: the benchmark server's)")
	flag.Parse()
	return o
}

// ------------------------------------------------------------------ measurement helpers

func cpuSeconds() float64 {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	tv := func(t syscall.Timeval) float64 { return float64(t.Sec) + float64(t.Usec)/1e6 }
	return tv(ru.Utime) + tv(ru.Stime)
}

func monotonicSeconds() float64 { // the clock of Python's time.monotonic()
	var ts unix.Timespec
	if err := unix.ClockGettime(unix.CLOCK_MONOTONIC, &ts); err != nil {
		return 0
	}
	return float64(ts.Sec) + float64(ts.Nsec)/1e9
}

// procStatusKB reads one "Vm..." line of /proc/self/status, in bytes.
func procStatusBytes(key string) int64 {
	raw, err := ioutil.ReadFile("/proc/self/status")
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(raw), "\n") {
		if strings.HasPrefix(line, key+":") {
			fields := strings.Fields(line[len(key)+1:])
			if len(fields) > 0 {
				kb, _ := strconv.ParseInt(fields[0], 10, 64)
				return kb * 1024
			}
		}
	}
	return 0
}

// samples repeats a measurement up to reps times within budget seconds (worker.Samples).
type samples struct {
	reps    int
	budget  float64
	started time.Time
	values  []float64
	cpu     []float64
	warmed  bool
}

func newSamples(o *options) *samples {
	return &samples{reps: o.reps, budget: o.budget, started: time.Now()}
}

func (s *samples) warmedUp() { s.warmed = true; s.started = time.Now() }

func (s *samples) more() bool {
	if len(s.values) == 0 {
		return true
	}
	if len(s.values) >= s.reps {
		return false
	}
	spent := time.Since(s.started).Seconds()
	return spent+spent/float64(len(s.values)) <= s.budget
}

// add records a sample, or drops it as the warm-up (unless the warm-up alone was long).
func (s *samples) add(seconds, value, cpu float64) {
	if !s.warmed {
		s.warmed = true
		if seconds < warmupLimit {
			s.started = time.Now()
			return
		}
	}
	s.values = append(s.values, value)
	s.cpu = append(s.cpu, cpu)
}

func (s *samples) result(unit string) map[string]interface{} {
	return map[string]interface{}{"samples": s.values, "cpu_s": s.cpu, "unit": unit}
}

// ------------------------------------------------------------------ the client

// contentTypes counts the Content-Type and the protocol of every answer, so that a
// protobuf run that fell back to JSON says so (and whether HTTP/2 carried it).
type contentTypes struct {
	mu        sync.Mutex
	counts    map[string]int
	protocols map[string]int
	gzip      int
}

type recorder struct {
	next   http.RoundTripper
	counts *contentTypes
}

func (r recorder) RoundTrip(req *http.Request) (*http.Response, error) {
	resp, err := r.next.RoundTrip(req)
	if err == nil {
		kind := resp.Header.Get("Content-Type")
		if i := strings.Index(kind, ";"); i >= 0 {
			kind = kind[:i]
		}
		r.counts.mu.Lock()
		r.counts.counts[kind]++
		r.counts.protocols[resp.Proto]++
		if resp.Uncompressed {
			r.counts.gzip++
		}
		r.counts.mu.Unlock()
	}
	return resp, err
}

type bench struct {
	opts    *options
	pods    func(ns string) podsClient
	dynamic dynamic.Interface
	types   *contentTypes
}

type podsClient interface {
	List(ctx context.Context, opts metav1.ListOptions) (*corev1.PodList, error)
	Get(ctx context.Context, name string, opts metav1.GetOptions) (*corev1.Pod, error)
	Watch(ctx context.Context, opts metav1.ListOptions) (watch.Interface, error)
}

func newBench(o *options) (*bench, error) {
	config, err := clientcmd.BuildConfigFromFlags("", o.kubeconfig)
	if err != nil {
		return nil, err
	}
	// No client-side rate limit (client-go's default is 5 requests/s with bursts of 10),
	// and a connection pool sized for the scenario, as the Python clients get where they
	// let you: on plain HTTP client-go uses http.DefaultTransport, which keeps 2 idle
	// connections per host, so 50 concurrent GETs would open a new connection for most
	// requests.
	config.QPS = -1
	config.Burst = 0
	if o.protobuf {
		config.ContentType = protobufType
		config.AcceptContentTypes = protobufType + ",application/json"
	}
	types := &contentTypes{counts: map[string]int{}, protocols: map[string]int{}}
	pool := o.concurrency
	if pool < 100 {
		pool = 100
	}
	config.WrapTransport = func(rt http.RoundTripper) http.RoundTripper {
		if t, ok := rt.(*http.Transport); ok {
			if t == http.DefaultTransport {
				t = t.Clone()
			}
			t.MaxIdleConnsPerHost = pool
			rt = t
		}
		return recorder{next: rt, counts: types}
	}
	clientset, err := kubernetes.NewForConfig(config)
	if err != nil {
		return nil, err
	}
	dyn, err := dynamic.NewForConfig(config)
	if err != nil {
		return nil, err
	}
	return &bench{
		opts:    o,
		pods:    func(ns string) podsClient { return clientset.CoreV1().Pods(ns) },
		dynamic: dyn,
		types:   types,
	}, nil
}

func (b *bench) namespace(fallback string) string {
	if b.opts.namespace != "" {
		return b.opts.namespace
	}
	return fallback
}

// ------------------------------------------------------------------ scenarios

var podsResource = schema.GroupVersionResource{Version: "v1", Resource: "pods"}

func (b *bench) listOnce(ctx context.Context, ns string) (int, error) {
	if b.opts.dicts {
		list, err := b.dynamic.Resource(podsResource).Namespace(ns).List(ctx, metav1.ListOptions{})
		if err != nil {
			return 0, err
		}
		if n := len(list.Items); n > 0 {
			if _, ok := list.Items[n-1].Object["metadata"].(map[string]interface{}); !ok {
				return 0, fmt.Errorf("the last item has no metadata map")
			}
		}
		return len(list.Items), nil
	}
	list, err := b.pods(ns).List(ctx, metav1.ListOptions{})
	if err != nil {
		return 0, err
	}
	if n := len(list.Items); n > 0 && list.Items[n-1].ResourceVersion == "" {
		return 0, fmt.Errorf("the last item did not decode: no resourceVersion")
	}
	return len(list.Items), nil
}

func (b *bench) checkCount(got int) error {
	if got != b.opts.size {
		return fmt.Errorf("expected %d items, got %d", b.opts.size, got)
	}
	return nil
}

func (b *bench) list(ctx context.Context) (map[string]interface{}, error) {
	ns := b.namespace(fmt.Sprintf("pods-%d", b.opts.size))
	s := newSamples(b.opts)
	for s.more() {
		cpu0, start := cpuSeconds(), time.Now()
		n, err := b.listOnce(ctx, ns)
		seconds, cpu := time.Since(start).Seconds(), cpuSeconds()-cpu0
		if err != nil {
			return nil, err
		}
		if err := b.checkCount(n); err != nil {
			return nil, err
		}
		s.add(seconds, seconds, cpu)
		runtime.GC()
	}
	return s.result("s"), nil
}

func (b *bench) rss(ctx context.Context) (map[string]interface{}, error) {
	if _, err := b.listOnce(ctx, "pods-10"); err != nil { // the connection, not counted
		return nil, err
	}
	runtime.GC()
	before := procStatusBytes("VmRSS")
	n, err := b.listOnce(ctx, b.namespace(fmt.Sprintf("pods-%d", b.opts.size)))
	peak := procStatusBytes("VmHWM")
	after := procStatusBytes("VmRSS")
	if err != nil {
		return nil, err
	}
	if err := b.checkCount(n); err != nil {
		return nil, err
	}
	mb := func(x int64) float64 { return float64(x) / (1 << 20) }
	return map[string]interface{}{
		"samples": []float64{mb(peak - before)}, "unit": "MB",
		"retained_mb": mb(after - before), "peak_mb": mb(peak), "before_mb": mb(before),
	}, nil
}

func (b *bench) get(ctx context.Context) (map[string]interface{}, error) {
	pods := b.pods(b.namespace("bench"))
	name := b.opts.name
	pod, err := pods.Get(ctx, name, metav1.GetOptions{})
	if err != nil {
		return nil, err
	}
	if pod.ResourceVersion == "" {
		return nil, fmt.Errorf("the pod did not decode: no resourceVersion")
	}
	run := func(total int) error {
		var remaining int64 = int64(total)
		var failed atomic.Value
		var wg sync.WaitGroup
		workers := b.opts.concurrency
		if workers > total {
			workers = total
		}
		for i := 0; i < workers; i++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for atomic.AddInt64(&remaining, -1) >= 0 {
					if _, err := pods.Get(ctx, name, metav1.GetOptions{}); err != nil {
						failed.Store(err)
						return
					}
				}
			}()
		}
		wg.Wait()
		if err, ok := failed.Load().(error); ok {
			return err
		}
		return nil
	}
	warm := b.opts.size
	if warm > 200 {
		warm = 200
	}
	if err := run(warm); err != nil { // warms up the connection pool
		return nil, err
	}
	s := newSamples(b.opts)
	s.warmedUp()
	for s.more() {
		cpu0, start := cpuSeconds(), time.Now()
		if err := run(b.opts.size); err != nil {
			return nil, err
		}
		seconds := time.Since(start).Seconds()
		s.add(seconds, float64(b.opts.size)/seconds, cpuSeconds()-cpu0)
	}
	return s.result("req/s"), nil
}

// watchOnce reads count events (bookmarks are not events) and checks the last one's
// resourceVersion (unless expectRV is empty).
func (b *bench) watchOnce(ctx context.Context, ns string, count int, expectRV string) error {
	w, err := b.pods(ns).Watch(ctx, metav1.ListOptions{
		ResourceVersion: b.opts.resourceVersion, AllowWatchBookmarks: true,
	})
	if err != nil {
		return err
	}
	defer w.Stop()
	seen, last := 0, ""
	for event := range w.ResultChan() {
		switch event.Type {
		case watch.Bookmark:
			continue
		case watch.Error:
			return fmt.Errorf("watch error event: %v", event.Object)
		}
		pod, ok := event.Object.(*corev1.Pod)
		if !ok {
			return fmt.Errorf("watch event of type %T", event.Object)
		}
		seen++
		last = pod.ResourceVersion
		if seen >= count {
			break
		}
	}
	if seen != count {
		return fmt.Errorf("expected %d events, got %d", count, seen)
	}
	if expectRV != "" && last != expectRV {
		return fmt.Errorf("wrong last event: resourceVersion %s, expected %s", last, expectRV)
	}
	return nil
}

func (b *bench) watch(ctx context.Context) (map[string]interface{}, error) {
	if b.opts.namespace == "" { // the benchmark server's pre-built streams
		if err := b.watchOnce(ctx, fmt.Sprintf("events-%d", b.opts.warmupEvents),
			b.opts.warmupEvents, strconv.Itoa(firstEventRV+b.opts.warmupEvents-1)); err != nil {
			return nil, err
		}
	} else if err := b.watchOnce(ctx, b.opts.namespace, b.opts.warmupEvents, ""); err != nil {
		// a real server's burst: its first events warm up
		return nil, err
	}
	ns := b.namespace(fmt.Sprintf("events-%d", b.opts.size))
	expect := b.opts.expectRV
	if expect == "" {
		expect = strconv.Itoa(firstEventRV + b.opts.size - 1)
	}
	s := newSamples(b.opts)
	s.warmedUp()
	for s.more() {
		cpu0, start := cpuSeconds(), time.Now()
		if err := b.watchOnce(ctx, ns, b.opts.size, expect); err != nil {
			return nil, err
		}
		seconds := time.Since(start).Seconds()
		s.add(seconds, float64(b.opts.size)/seconds, cpuSeconds()-cpu0)
		runtime.GC()
	}
	return s.result("events/s"), nil
}

// control calls the benchmark server's /_bench endpoints.
func (b *bench) control(path string) (map[string]interface{}, error) {
	resp, err := http.Get(strings.TrimRight(b.opts.server, "/") + path)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	answer := map[string]interface{}{}
	return answer, json.NewDecoder(resp.Body).Decode(&answer)
}

// idle opens size watches on the "idle" namespace, then measures memory per watch, CPU
// while idle and the delivery latency of single events and of one burst (worker.py).
func (b *bench) idle(ctx context.Context) (map[string]interface{}, error) {
	if _, err := url.Parse(b.opts.server); err != nil || b.opts.server == "" {
		return nil, fmt.Errorf("idle needs --server (the benchmark server's control endpoints)")
	}
	if err := b.watchOnce(ctx, fmt.Sprintf("events-%d", b.opts.warmupEvents), b.opts.warmupEvents,
		strconv.Itoa(firstEventRV+b.opts.warmupEvents-1)); err != nil {
		return nil, err
	}
	runtime.GC()
	before := procStatusBytes("VmRSS")
	var mu sync.Mutex
	var latencies []float64
	var received int64
	var errs []string
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	pods := b.pods("idle")
	for i := 0; i < b.opts.size; i++ {
		go func() {
			w, err := pods.Watch(ctx, metav1.ListOptions{ResourceVersion: "1"})
			if err != nil {
				mu.Lock()
				errs = append(errs, err.Error())
				mu.Unlock()
				return
			}
			defer w.Stop()
			for event := range w.ResultChan() {
				pod, ok := event.Object.(*corev1.Pod)
				if !ok {
					continue
				}
				sent, err := strconv.ParseFloat(strings.TrimSpace(pod.Annotations[sentAnnotation]), 64)
				mu.Lock()
				if err == nil {
					latencies = append(latencies, monotonicSeconds()-sent)
				}
				mu.Unlock()
				atomic.AddInt64(&received, 1)
			}
		}()
	}
	opened, err := b.waitOpen(b.opts.size, 120*time.Second, func() bool {
		mu.Lock()
		defer mu.Unlock()
		return len(errs) > 0
	})
	if err != nil {
		return nil, err
	}
	time.Sleep(time.Duration(b.opts.settle * float64(time.Second)))
	runtime.GC()
	after := procStatusBytes("VmRSS")
	cpu0, wall0 := cpuSeconds(), time.Now()
	time.Sleep(time.Duration(b.opts.idleSeconds * float64(time.Second)))
	idleCPU := (cpuSeconds() - cpu0) / time.Since(wall0).Seconds() * 1000

	fire := func(to string, count int64) error {
		target := atomic.LoadInt64(&received) + count
		if _, err := b.control("/_bench/fire?to=" + to); err != nil {
			return err
		}
		deadline := time.Now().Add(30 * time.Second)
		for atomic.LoadInt64(&received) < target && time.Now().Before(deadline) {
			time.Sleep(time.Millisecond)
		}
		return nil
	}
	fires := b.opts.fires
	if opened == 0 {
		fires = 0
	}
	for i := 0; i < fires; i++ {
		if err := fire("one", 1); err != nil {
			return nil, err
		}
		time.Sleep(10 * time.Millisecond)
	}
	mu.Lock()
	single := make([]float64, len(latencies))
	for i, x := range latencies {
		single[i] = x * 1000
	}
	latencies = latencies[:0]
	mu.Unlock()
	sort.Float64s(single)
	var burst interface{}
	burstDelivered := 0
	if opened > 0 {
		if err := fire("all", int64(opened)); err != nil {
			return nil, err
		}
		mu.Lock()
		burstDelivered = len(latencies)
		worst := 0.0
		for _, x := range latencies {
			if x > worst {
				worst = x
			}
		}
		mu.Unlock()
		if burstDelivered > 0 {
			burst = worst * 1000
		}
	}
	result := map[string]interface{}{
		"samples":           []float64{float64(after-before) / float64(maxInt(opened, 1)) / 1024},
		"unit":              "KB/watch",
		"opened":            opened,
		"requested":         b.opts.size,
		"idle_cpu_ms_per_s": idleCPU,
		"delivered":         len(single),
		"burst_ms":          burst,
		"burst_delivered":   burstDelivered,
		"latency_p50_ms":    nil,
		"latency_max_ms":    nil,
	}
	if len(single) > 0 {
		result["latency_p50_ms"] = median(single)
		result["latency_max_ms"] = single[len(single)-1]
	}
	mu.Lock()
	if len(errs) > 3 {
		errs = errs[:3]
	}
	result["errors"] = append([]string{}, errs...)
	mu.Unlock()
	return result, nil
}

func (b *bench) waitOpen(count int, timeout time.Duration, failed func() bool) (int, error) {
	deadline := time.Now().Add(timeout)
	last, lastChange := -1, time.Now()
	for {
		stats, err := b.control("/_bench/stats")
		if err != nil {
			return 0, err
		}
		opened := int(stats["idle_open"].(float64))
		now := time.Now()
		if opened != last {
			last, lastChange = opened, now
		}
		if last >= count || now.After(deadline) || now.Sub(lastChange) > 5*time.Second || failed() {
			return last, nil
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func median(sorted []float64) float64 {
	n := len(sorted)
	if n%2 == 1 {
		return sorted[n/2]
	}
	return (sorted[n/2-1] + sorted[n/2]) / 2
}

func maxInt(a, b int) int {
	if a > b {
		return a
	}
	return b
}

// ------------------------------------------------------------------ entry point

func affinity() []int {
	var set unix.CPUSet
	if err := unix.SchedGetaffinity(0, &set); err != nil {
		return nil
	}
	var cpus []int
	for i := 0; i < 1024; i++ {
		if set.IsSet(i) {
			cpus = append(cpus, i)
		}
	}
	return cpus
}

func run(o *options) map[string]interface{} {
	result := map[string]interface{}{
		"client": o.client, "scenario": o.scenario, "size": o.size, "dicts": o.dicts,
		"gomaxprocs": runtime.GOMAXPROCS(0), "cpu_affinity": affinity(),
		"go_version": runtime.Version(), "client_go": clientversion.Get().GitVersion,
		"gogc": os.Getenv("GOGC"),
		// the Python workers report whether they left the GC on; Go's is always on
		// unless GOGC=off
		"gc_enabled_after": os.Getenv("GOGC") != "off",
	}
	b, err := newBench(o)
	if err != nil {
		result["ok"], result["error"] = false, err.Error()
		return result
	}
	scenarios := map[string]func(context.Context) (map[string]interface{}, error){
		"list": b.list, "rss": b.rss, "get": b.get, "watch": b.watch, "idle": b.idle,
	}
	scenario, known := scenarios[o.scenario]
	if !known {
		result["ok"], result["error"] = false, fmt.Sprintf("unknown scenario %q", o.scenario)
		return result
	}
	answer, err := scenario(context.Background())
	switch {
	case errors.Is(err, errNotSupported):
		result["ok"], result["na"] = false, "n/a (not offered)"
	case err != nil:
		msg := err.Error()
		if len(msg) > 300 {
			msg = msg[:300]
		}
		result["ok"], result["error"] = false, msg
	default:
		for k, v := range answer {
			result[k] = v
		}
		result["ok"] = true
	}
	b.types.mu.Lock()
	result["content_types"] = b.types.counts
	result["gzip_answers"] = b.types.gzip
	result["protocols"] = b.types.protocols
	b.types.mu.Unlock()
	return result
}

func main() {
	o := parseFlags()
	if o.profile != "" {
		f, err := os.Create(o.profile)
		if err == nil {
			if err := pprof.StartCPUProfile(f); err == nil {
				defer f.Close()
				defer pprof.StopCPUProfile()
			}
		}
	}
	result := run(o)
	line, err := json.Marshal(result)
	if err != nil {
		line = []byte(fmt.Sprintf(`{"ok": false, "error": %q}`, err.Error()))
	}
	fmt.Println(string(line))
}
