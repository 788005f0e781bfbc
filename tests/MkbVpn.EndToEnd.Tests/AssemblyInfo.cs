// The end-to-end tests share the machine's two cores and wireguard-go processes: one at a time.
[assembly: CollectionBehavior(DisableTestParallelization = true)]
