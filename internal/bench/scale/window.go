package scale

// windowSummary condenses the samples of the window. MB are 10^6 bytes.
type windowSummary struct {
	Samples int     `json:"samples"`
	Seconds float64 `json:"seconds"`

	RSSMinMB  float64 `json:"rssMinMB"`
	RSSMeanMB float64 `json:"rssMeanMB"`
	RSSMaxMB  float64 `json:"rssMaxMB"`
	RSSLastMB float64 `json:"rssLastMB"`
	// HWMMB is VmHWM at the last sample: the peak since the process
	// started, the ramp-up included.
	HWMMB float64 `json:"hwmMB"`

	GoroutinesMax   float64 `json:"goroutinesMax"`
	ThreadsMax      float64 `json:"threadsMax"`
	HeapInuseMeanMB float64 `json:"heapInuseMeanMB"`
	HeapInuseMaxMB  float64 `json:"heapInuseMaxMB"`
	HeapObjectsMax  float64 `json:"heapObjectsMax"`
	StackInuseMaxMB float64 `json:"stackInuseMaxMB"`
	GoSysMaxMB      float64 `json:"goSysMaxMB"`

	// CPUCores is the CPU time the process used over the window divided
	// by the window's wall time: 0.05 is 5 % of one core.
	CPUCores float64 `json:"cpuCores"`

	NATSMsgsFromWorkerPerSec  float64 `json:"natsMsgsFromWorkerPerSecond"`
	NATSMsgsToWorkerPerSec    float64 `json:"natsMsgsToWorkerPerSecond"`
	NATSBytesFromWorkerPerSec float64 `json:"natsBytesFromWorkerPerSecond"`
	NATSBytesToWorkerPerSec   float64 `json:"natsBytesToWorkerPerSecond"`
	// HeartbeatsExpectedPerSec is jobs ÷ heartbeat interval: what the
	// messages from the worker should be when it does nothing else.
	HeartbeatsExpectedPerSec float64 `json:"heartbeatsExpectedPerSecond"`

	// APIRequests counts requests the simulator got during the window.
	APIRequests int64 `json:"apiRequests"`
}

// summarizeWindow condenses samples, which are in time order.
func summarizeWindow(samples []sample) windowSummary {
	var w windowSummary
	if len(samples) == 0 {
		return w
	}
	first, last := samples[0], samples[len(samples)-1]
	w.Samples = len(samples)
	w.Seconds = last.AtSeconds - first.AtSeconds
	w.RSSMinMB = mb(first.RSS)
	var rssSum, heapSum float64
	for _, s := range samples {
		rssSum += float64(s.RSS)
		heapSum += s.HeapInuse
		w.RSSMinMB = min(w.RSSMinMB, mb(s.RSS))
		w.RSSMaxMB = max(w.RSSMaxMB, mb(s.RSS))
		w.GoroutinesMax = max(w.GoroutinesMax, s.Goroutines)
		w.ThreadsMax = max(w.ThreadsMax, s.Threads)
		w.HeapInuseMaxMB = max(w.HeapInuseMaxMB, s.HeapInuse/1e6)
		w.HeapObjectsMax = max(w.HeapObjectsMax, s.HeapObjects)
		w.StackInuseMaxMB = max(w.StackInuseMaxMB, s.StackInuse/1e6)
		w.GoSysMaxMB = max(w.GoSysMaxMB, s.GoSys/1e6)
	}
	n := float64(len(samples))
	w.RSSMeanMB = rssSum / n / 1e6
	w.HeapInuseMeanMB = heapSum / n / 1e6
	w.RSSLastMB = mb(last.RSS)
	w.HWMMB = mb(last.HWM)
	if w.Seconds > 0 {
		w.CPUCores = (last.CPUSeconds - first.CPUSeconds) / w.Seconds
		w.NATSMsgsFromWorkerPerSec = float64(last.NATSInMsgs-first.NATSInMsgs) / w.Seconds
		w.NATSMsgsToWorkerPerSec = float64(last.NATSOutMsgs-first.NATSOutMsgs) / w.Seconds
		w.NATSBytesFromWorkerPerSec = float64(last.NATSInBytes-first.NATSInBytes) / w.Seconds
		w.NATSBytesToWorkerPerSec = float64(last.NATSOutByte-first.NATSOutByte) / w.Seconds
	}
	return w
}

// perJob is what each job in flight adds to the idle worker, from the
// window's means (goroutines and objects: their maxima, which are steady).
type perJob struct {
	RSSBytes        float64 `json:"rssBytes"`
	HeapInuseBytes  float64 `json:"heapInuseBytes"`
	StackInuseBytes float64 `json:"stackInuseBytes"`
	HeapObjects     float64 `json:"heapObjects"`
	Goroutines      float64 `json:"goroutines"`
}

func perJobOf(idle sample, window []sample, jobs int) perJob {
	if len(window) == 0 || jobs <= 0 {
		return perJob{}
	}
	var rss, heap, stack, objects, goroutines float64
	for _, s := range window {
		rss += float64(s.RSS)
		heap += s.HeapInuse
		stack += s.StackInuse
		objects = max(objects, s.HeapObjects)
		goroutines = max(goroutines, s.Goroutines)
	}
	n, j := float64(len(window)), float64(jobs)
	return perJob{
		RSSBytes:        (rss/n - float64(idle.RSS)) / j,
		HeapInuseBytes:  (heap/n - idle.HeapInuse) / j,
		StackInuseBytes: (stack/n - idle.StackInuse) / j,
		HeapObjects:     (objects - idle.HeapObjects) / j,
		Goroutines:      (goroutines - idle.Goroutines) / j,
	}
}

func mb(b int64) float64 { return float64(b) / 1e6 }
