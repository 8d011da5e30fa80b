import { defineConfig } from "vitest/config"

// Two tiers: `fast` (unit + simulated cluster, 1-2 minutes) and `cluster` (a real
// kube-apiserver, controller-manager, scheduler and kwok started once per run).
export default defineConfig({
  test: {
    projects: [
      {
        test: {
          name: "fast",
          include: ["test/unit/**/*.test.ts", "test/sim/**/*.test.ts"],
          testTimeout: 30_000
        }
      },
      {
        test: {
          name: "cluster",
          include: ["test/cluster/**/*.test.ts"],
          globalSetup: ["test/cluster/globalSetup.ts"],
          testTimeout: 240_000,
          hookTimeout: 600_000,
          fileParallelism: false
        }
      }
    ]
  }
})
