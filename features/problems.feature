Feature: Problems found from recurring incidents
  As the N2 network team and the ROC of a restaurant chain
  We want incidents that keep coming back on the same router to be traced to one problem
  So that the cause is removed once, and every restaurant still waiting gets the workaround, then the fix

  The restaurant chain "resto-chain" takes card payments in its restaurant 42 through the router
  "router-resto-042". Three incidents on the same CI of an account within 7 days propose a problem;
  the engine links the incidents and the problem both ways.

  Background:
    Given the restaurant chain "resto-chain", whose ROC is "roc-anne"

  Scenario: Three incidents on the same router in a week propose a problem
    When "supervision" logs the incident "Restaurant 42 router unreachable" on "router-resto-042" of "resto-chain" on Monday 1 June 2026 at 09:00
    And "hotline N1" logs the incident "Restaurant 42 payment terminals offline" on "router-resto-042" of "resto-chain" on Wednesday 3 June 2026 at 14:00
    And "supervision" logs the incident "Restaurant 7 router unreachable" on "router-resto-007" of "resto-chain" on Wednesday 3 June 2026 at 15:00
    Then no problem is proposed for "router-resto-042"
    When "supervision" logs the incident "Restaurant 42 router unreachable again" on "router-resto-042" of "resto-chain" on Friday 5 June 2026 at 08:30
    Then the problem "Recurring incidents on router-resto-042" is proposed for "resto-chain", linking:
      | Restaurant 42 router unreachable        |
      | Restaurant 42 payment terminals offline |
      | Restaurant 42 router unreachable again  |
    And "Restaurant 42 router unreachable" names the problem on "router-resto-042"
    And "Restaurant 42 payment terminals offline" names the problem on "router-resto-042"
    And "Restaurant 42 router unreachable again" names the problem on "router-resto-042"
    And "Restaurant 7 router unreachable" names no problem
    When "supervision" logs the incident "Restaurant 42 router down" on "router-resto-042" of "resto-chain" on Saturday 6 June 2026 at 22:00
    Then the problem on "router-resto-042" links 4 incidents, the last being "Restaurant 42 router down"
    And "Restaurant 42 router down" names the problem on "router-resto-042"
    When the whole event history is delivered again to the engine's processes
    Then nothing more is recorded

  Scenario: Incidents more than a week apart are no problem
    When "supervision" logs the incident "Restaurant 42 router unreachable" on "router-resto-042" of "resto-chain" on Monday 1 June 2026 at 09:00
    And "supervision" logs the incident "Restaurant 42 router unreachable again" on "router-resto-042" of "resto-chain" on Tuesday 9 June 2026 at 09:00
    And "supervision" logs the incident "Restaurant 42 router down" on "router-resto-042" of "resto-chain" on Wednesday 17 June 2026 at 09:00
    Then no problem is proposed for "router-resto-042"

  Scenario: Publishing the workaround shows it on the open incidents
    Given these incidents were logged on "router-resto-042" of "resto-chain":
      | incident                                | logged                         |
      | Restaurant 42 router unreachable        | Monday 1 June 2026 at 09:00    |
      | Restaurant 42 payment terminals offline | Wednesday 3 June 2026 at 14:00 |
      | Restaurant 42 router unreachable again  | Friday 5 June 2026 at 08:30    |
    And "N2 network" resolved "Restaurant 42 router unreachable" with code "no_fault_found" on Friday 5 June 2026 at 09:00
    When "N3 network" starts investigating the problem on "router-resto-042" on Friday 5 June 2026 at 10:00
    And "N3 network" publishes the workaround "Power-cycle the router, then force the 4G backup link" for the problem on "router-resto-042" on Friday 5 June 2026 at 11:00
    Then the problem on "router-resto-042" is a known error
    And "Restaurant 42 payment terminals offline" shows the workaround "Power-cycle the router, then force the 4G backup link"
    And "Restaurant 42 router unreachable again" shows the workaround "Power-cycle the router, then force the 4G backup link"
    And "Restaurant 42 router unreachable" shows no workaround
    When "supervision" logs the incident "Restaurant 42 router down" on "router-resto-042" of "resto-chain" on Saturday 6 June 2026 at 22:00
    Then "Restaurant 42 router down" shows the workaround "Power-cycle the router, then force the 4G backup link"
    When the whole event history is delivered again to the engine's processes
    Then nothing more is recorded

  Scenario: An incident found not to be caused by the problem is unlinked and gets no workaround
    Given these incidents were logged on "router-resto-042" of "resto-chain":
      | incident                                | logged                         |
      | Restaurant 42 router unreachable        | Monday 1 June 2026 at 09:00    |
      | Restaurant 42 payment terminals offline | Wednesday 3 June 2026 at 14:00 |
      | Restaurant 42 router unreachable again  | Friday 5 June 2026 at 08:30    |
    When "N2 network" unlinks "Restaurant 42 payment terminals offline" from the problem on "router-resto-042" on Friday 5 June 2026 at 09:00
    Then the problem on "router-resto-042" links 2 incidents, the last being "Restaurant 42 router unreachable again"
    And "Restaurant 42 payment terminals offline" names no problem
    When "N3 network" starts investigating the problem on "router-resto-042" on Friday 5 June 2026 at 10:00
    And "N3 network" publishes the workaround "Power-cycle the router" for the problem on "router-resto-042" on Friday 5 June 2026 at 11:00
    Then "Restaurant 42 router unreachable again" shows the workaround "Power-cycle the router"
    And "Restaurant 42 payment terminals offline" shows no workaround
    When the whole event history is delivered again to the engine's processes
    Then nothing more is recorded
    And "Restaurant 42 payment terminals offline" names no problem

  Scenario: A successful change resolves the problem and its incidents
    Given these incidents were logged on "router-resto-042" of "resto-chain":
      | incident                                | logged                         |
      | Restaurant 42 router unreachable        | Monday 1 June 2026 at 09:00    |
      | Restaurant 42 payment terminals offline | Wednesday 3 June 2026 at 14:00 |
      | Restaurant 42 router unreachable again  | Friday 5 June 2026 at 08:30    |
    And "N3 network" found the root cause "firmware 15.2 leaks memory until the router freezes" of the problem on "router-resto-042" on Friday 5 June 2026 at 10:00
    And "N3 network" published the workaround "Power-cycle the router" for the problem on "router-resto-042" on Friday 5 June 2026 at 10:30
    And "N2 network" recorded that service is restored for "Restaurant 42 payment terminals offline" on Friday 5 June 2026 at 11:00
    And "N2 network" had the change "Upgrade router-resto-042 to firmware 15.4" on "router-resto-042" requested for the problem on "router-resto-042", authorised by the change manager and scheduled on Friday 5 June 2026 from 22:00 to 23:00
    When "N2 network" starts the change "Upgrade router-resto-042 to firmware 15.4" on Friday 5 June 2026 at 22:00
    And "N2 network" completes the change "Upgrade router-resto-042 to firmware 15.4" on Friday 5 June 2026 at 22:40
    Then the problem on "router-resto-042" is resolved by the change "Upgrade router-resto-042 to firmware 15.4"
    And "Restaurant 42 payment terminals offline" is resolved with code "workaround", the notes naming the problem on "router-resto-042"
    And "Restaurant 42 router unreachable" is resolved with code "fixed", the notes naming the problem on "router-resto-042"
    And "Restaurant 42 router unreachable again" is resolved with code "fixed", the notes naming the problem on "router-resto-042"
    When the whole event history is delivered again to the engine's processes
    Then nothing more is recorded

  Scenario: A failed change reopens the investigation
    Given these incidents were logged on "router-resto-042" of "resto-chain":
      | incident                                | logged                         |
      | Restaurant 42 router unreachable        | Monday 1 June 2026 at 09:00    |
      | Restaurant 42 payment terminals offline | Wednesday 3 June 2026 at 14:00 |
      | Restaurant 42 router unreachable again  | Friday 5 June 2026 at 08:30    |
    And "N3 network" found the root cause "firmware 15.2 leaks memory until the router freezes" of the problem on "router-resto-042" on Friday 5 June 2026 at 10:00
    And "N2 network" had the change "Upgrade router-resto-042 to firmware 15.4" on "router-resto-042" requested for the problem on "router-resto-042", authorised by the change manager and scheduled on Friday 5 June 2026 from 22:00 to 23:00
    When "N2 network" starts the change "Upgrade router-resto-042 to firmware 15.4" on Friday 5 June 2026 at 22:00
    And "N2 network" records that the change "Upgrade router-resto-042 to firmware 15.4" failed on Friday 5 June 2026 at 22:50 because "the router did not boot on 15.4", backed out by "firmware 15.2 reinstalled"
    Then the problem on "router-resto-042" is under investigation again because the change "Upgrade router-resto-042 to firmware 15.4" failed: "the router did not boot on 15.4"
    And "Restaurant 42 router unreachable" is still open
    And "Restaurant 42 payment terminals offline" is still open
    When the whole event history is delivered again to the engine's processes
    Then nothing more is recorded
