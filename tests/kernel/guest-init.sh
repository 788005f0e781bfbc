#!/bin/busybox sh
# PID 1 of the test VM's initramfs (busybox). Mounts the host's root read-only over 9p (tag
# hostroot) at /newroot, the read-only share (tag app: mkb-vpn, the scenario) at /mnt/app and the
# writable one (tag out: results) at /mnt/out inside it, puts tmpfs on /tmp and
# /run, chroots into the scenario named on the kernel command line (mkbtest=PATH), and powers
# off whatever happens. Every line it prints starts with "init:" so the host can tell a VM that
# booted from one that did not.
/bin/busybox --install -s /bin
export PATH=/bin
mount -t proc proc /proc
mount -t sysfs sys /sys
mount -t devtmpfs dev /dev
echo "init: booted $(uname -r) in $(cut -d' ' -f1 /proc/uptime) s"
while read -r m; do
  insmod "/modules/$m" || echo "init: insmod $m failed"
done < /modules/order
scenario=$(sed -n 's/.*mkbtest=\([^ ]*\).*/\1/p' /proc/cmdline)
mkdir -p /newroot
# Read-only shares that do not change while the VM runs are cached (cache=loose): .NET reads its
# files again on every call, and uncached 9p made each call 3-4x slower.
if mount -t 9p -o trans=virtio,version=9p2000.L,ro,msize=262144,cache=loose hostroot /newroot &&
   mount -t tmpfs tmpfs /newroot/mnt && mkdir /newroot/mnt/app /newroot/mnt/out &&
   mount -t 9p -o trans=virtio,version=9p2000.L,ro,msize=262144,cache=loose app /newroot/mnt/app &&
   mount -t 9p -o trans=virtio,version=9p2000.L,msize=262144 out /newroot/mnt/out; then
  for d in tmp run; do mount -t tmpfs -o mode=1777 tmpfs "/newroot/$d"; done
  mount -t proc proc /newroot/proc
  mount -t sysfs sys /newroot/sys
  mount -t devtmpfs dev /newroot/dev
  mkdir -p /newroot/dev/pts /newroot/dev/shm
  mount -t devpts devpts /newroot/dev/pts
  mount -t tmpfs tmpfs /newroot/dev/shm
  # bash's <(...) needs /dev/fd. /dev/stdin is left out on purpose, as in minimal containers.
  ln -s /proc/self/fd /newroot/dev/fd
  # The kernel loads modules on demand (veth, nf_tables, ...) with the modprobe of this
  # initramfs root: send it to the host root's modprobe and /lib/modules instead.
  printf '#!/bin/busybox sh\nexec chroot /newroot /sbin/modprobe "$@"\n' > /bin/modprobe-newroot
  chmod 0755 /bin/modprobe-newroot
  echo /bin/modprobe-newroot > /proc/sys/kernel/modprobe
  echo "init: running $scenario"
  chroot /newroot /usr/bin/env -i PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin HOME=/tmp TERM=dumb \
    /bin/bash "$scenario" /mnt/out
  echo "init: scenario exited with $?"
  sync
else
  echo "init: cannot mount the host's root over 9p"
fi
poweroff -f
