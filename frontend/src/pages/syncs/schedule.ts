/** The sync schedule picker's state, to and from the API's `schedule:` value. */
import type { Schedule } from "../../api/types";

export type ScheduleKind = "manual" | "every" | "cron" | "after";

export interface ScheduleState {
  kind: ScheduleKind;
  amount: number;
  unit: "minute" | "hour" | "day" | "week";
  cron: string;
  timeZone: string;
  after: string;
}

export const defaultSchedule: ScheduleState = {
  kind: "manual",
  amount: 1,
  unit: "hour",
  cron: "0 6 * * *",
  timeZone: "UTC",
  after: "",
};

export function readSchedule(schedule: Schedule | undefined): ScheduleState {
  if (!schedule || schedule === "manual") return defaultSchedule;
  if ("every" in schedule) {
    const match = /^\s*(\d+)\s*(second|minute|hour|day|week)s?\s*$/.exec(schedule.every);
    return { ...defaultSchedule, kind: "every", amount: match ? Number(match[1]) : 1, unit: (match?.[2] as ScheduleState["unit"]) ?? "hour" };
  }
  if ("cron" in schedule) return { ...defaultSchedule, kind: "cron", cron: schedule.cron, timeZone: schedule.time_zone ?? "UTC" };
  return { ...defaultSchedule, kind: "after", after: schedule.after };
}

export function writeSchedule(state: ScheduleState): Schedule {
  switch (state.kind) {
    case "manual":
      return "manual";
    case "every":
      return { every: `${state.amount} ${state.unit}${state.amount === 1 ? "" : "s"}` };
    case "cron":
      return { cron: state.cron.trim(), time_zone: state.timeZone || "UTC" };
    case "after":
      return { after: state.after };
  }
}
