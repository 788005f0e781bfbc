# Sourced by the web benches: chromium_list_page BASE MKB DATA_DIR N prints the time of the client list page as a
# person opens it: Debian's chromium driven by playwright-core (from npm, never a downloaded browser), logged in
# as a new admin, navigation until 'load' (images such as the traffic chart included) and the first row; median of 5.
chromium_list_page() {
  local base=$1 mkb=$2 dir=$3 n=$4 js ms
  if [ ! -x /usr/bin/chromium ] || ! command -v npm >/dev/null; then
    echo "chromium: page load not measured (no /usr/bin/chromium or npm)"
    return
  fi
  printf '%s\n' 'bench-password-123' | "$mkb" admin add bench --data-dir "$dir" --password-stdin >/dev/null
  js=$(mktemp -d)
  (cd "$js" && npm install --silent --no-audit --no-fund playwright-core >/dev/null 2>&1)
  cat > "$js/load.js" <<'JS'
const { chromium } = require('playwright-core');
(async () => {
  const base = process.argv[2];
  const browser = await chromium.launch({ executablePath: '/usr/bin/chromium', headless: true,
    args: ['--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update', '--disable-sync', '--no-first-run'] });
  const page = await browser.newPage();
  await page.goto(base + '/login');
  await page.getByLabel('Admin name').fill('bench');
  await page.getByLabel('Password').fill('bench-password-123');
  await page.getByRole('button', { name: 'Log in' }).click();
  await page.waitForURL(base + '/');
  const times = [];
  for (let i = 0; i < 5; i++) {
    const t0 = Date.now();
    await page.goto(base + '/', { waitUntil: 'load' });
    await page.locator('tbody tr').first().waitFor();
    times.push(Date.now() - t0);
  }
  times.sort((a, b) => a - b);
  console.log(times[2]);
  await browser.close();
})().catch(e => { console.error(e.message); process.exit(1); });
JS
  if ms=$(node "$js/load.js" "$base" 2>/dev/null); then
    printf 'chromium: client list page:  %d ms (median of 5, logged in, %d clients in the store; target < 1 s)\n' "$ms" "$n"
  else
    echo "chromium: page load not measured (playwright-core or chromium failed)"
  fi
  rm -rf "$js"
}
